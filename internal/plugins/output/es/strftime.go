package es

import (
	"fmt"
	"strconv"
	"time"
)

// appendStrftime formats t (UTC) with the C strftime conversions Fluent Bit
// users put in logstash_dateformat and time_key_format. Unknown conversions
// are refused when the layout is checked (checkStrftime), so this never
// meets one.
func appendStrftime(dst []byte, layout string, t time.Time) []byte {
	for i := 0; i < len(layout); i++ {
		c := layout[i]
		if c != '%' || i+1 == len(layout) {
			dst = append(dst, c)
			continue
		}
		i++
		switch layout[i] {
		case 'Y':
			dst = strconv.AppendInt(dst, int64(t.Year()), 10)
		case 'y':
			dst = pad2(dst, t.Year()%100)
		case 'C':
			dst = pad2(dst, t.Year()/100)
		case 'm':
			dst = pad2(dst, int(t.Month()))
		case 'd':
			dst = pad2(dst, t.Day())
		case 'e':
			if t.Day() < 10 {
				dst = append(dst, ' ')
			}
			dst = strconv.AppendInt(dst, int64(t.Day()), 10)
		case 'H':
			dst = pad2(dst, t.Hour())
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			dst = pad2(dst, h)
		case 'p':
			if t.Hour() < 12 {
				dst = append(dst, "AM"...)
			} else {
				dst = append(dst, "PM"...)
			}
		case 'M':
			dst = pad2(dst, t.Minute())
		case 'S':
			dst = pad2(dst, t.Second())
		case 'j':
			d := t.YearDay()
			if d < 100 {
				dst = append(dst, '0')
			}
			dst = pad2(dst, d)
		case 'b', 'h':
			dst = append(dst, t.Month().String()[:3]...)
		case 'B':
			dst = append(dst, t.Month().String()...)
		case 'a':
			dst = append(dst, t.Weekday().String()[:3]...)
		case 'A':
			dst = append(dst, t.Weekday().String()...)
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			dst = strconv.AppendInt(dst, int64(wd), 10)
		case 'w':
			dst = strconv.AppendInt(dst, int64(t.Weekday()), 10)
		case 'V':
			_, w := t.ISOWeek()
			dst = pad2(dst, w)
		case 'G':
			y, _ := t.ISOWeek()
			dst = strconv.AppendInt(dst, int64(y), 10)
		case 'F':
			dst = appendStrftime(dst, "%Y-%m-%d", t)
		case 'T':
			dst = appendStrftime(dst, "%H:%M:%S", t)
		case 'D':
			dst = appendStrftime(dst, "%m/%d/%y", t)
		case 'R':
			dst = appendStrftime(dst, "%H:%M", t)
		case 's':
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case 'z':
			dst = append(dst, "+0000"...)
		case 'Z':
			dst = append(dst, "UTC"...)
		case '%':
			dst = append(dst, '%')
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		default:
			dst = append(dst, '%', layout[i])
		}
	}
	return dst
}

func pad2(dst []byte, v int) []byte {
	if v < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(v), 10)
}

// checkStrftime refuses conversions appendStrftime does not know, so a typo
// is a configuration error instead of a literal in every index name.
func checkStrftime(layout string) error {
	for i := 0; i < len(layout); i++ {
		if layout[i] != '%' {
			continue
		}
		if i+1 == len(layout) {
			return fmt.Errorf("%q ends with a lone %%", layout)
		}
		i++
		switch layout[i] {
		case 'Y', 'y', 'C', 'm', 'd', 'e', 'H', 'I', 'p', 'M', 'S', 'j', 'b', 'h', 'B', 'a', 'A',
			'u', 'w', 'V', 'G', 'F', 'T', 'D', 'R', 's', 'z', 'Z', '%', 'n', 't':
		default:
			return fmt.Errorf("%q: conversion %%%c is not supported", layout, layout[i])
		}
	}
	return nil
}
