package forward

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/floe-io/floe/internal/event"
)

// The handshake (only when the server has a shared key or users):
//
//	server → ["HELO", {"nonce": bytes, "auth": salt bytes ("" without users), "keepalive": bool}]
//	client → ["PING", hostname, shared_key_salt, hex(sha512(salt+hostname+nonce+shared_key)), username, hex(sha512(auth+username+password))]
//	server → ["PONG", ok, reason, server_hostname, hex(sha512(salt+server_hostname+nonce+shared_key))]

// Helo is the server's greeting.
type Helo struct {
	Nonce     []byte
	Auth      []byte // salt for user passwords; empty when users are not required
	Keepalive bool
}

// Ping is the client's answer to HELO.
type Ping struct {
	Hostname        string
	SharedKeySalt   []byte
	SharedKeyDigest string
	Username        string
	Password        string // hex digest, "" without user auth
}

// Pong is the server's verdict.
type Pong struct {
	AuthResult      bool
	Reason          string
	Hostname        string
	SharedKeyDigest string
}

// SharedKeyDigest is hex(sha512(salt + hostname + nonce + sharedKey)).
func SharedKeyDigest(salt []byte, hostname string, nonce []byte, sharedKey string) string {
	h := sha512.New()
	h.Write(salt)
	h.Write([]byte(hostname))
	h.Write(nonce)
	h.Write([]byte(sharedKey))
	return hex.EncodeToString(h.Sum(nil))
}

// PasswordDigest is hex(sha512(authSalt + username + password)).
func PasswordDigest(authSalt []byte, username, password string) string {
	h := sha512.New()
	h.Write(authSalt)
	h.Write([]byte(username))
	h.Write([]byte(password))
	return hex.EncodeToString(h.Sum(nil))
}

func digestEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func random16() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return b
}

// AppendHelo encodes a HELO (nonce and auth as str, as Fluent Bit sends them).
func AppendHelo(dst []byte, h Helo) []byte {
	dst = event.AppendArrayHeader(dst, 2)
	dst = event.AppendString(dst, "HELO")
	dst = event.AppendMapHeader(dst, 3)
	dst = event.AppendString(dst, "nonce")
	dst = event.AppendString(dst, string(h.Nonce))
	dst = event.AppendString(dst, "auth")
	dst = event.AppendString(dst, string(h.Auth))
	dst = event.AppendString(dst, "keepalive")
	return event.AppendBool(dst, h.Keepalive)
}

// ParseHelo decodes a HELO; nonce and auth may be str or bin.
func ParseHelo(b []byte) (Helo, error) {
	h := Helo{Keepalive: true}
	p, err := handshakeHead(b, "HELO", 2)
	if err != nil {
		return h, err
	}
	n, p, err := mapHeader(b, p)
	if err != nil {
		return h, fmt.Errorf("HELO options: %w", err)
	}
	for i := 0; i < n; i++ {
		k, _, next, err := rawBytes(b, p)
		if err != nil {
			return h, fmt.Errorf("HELO option key: %w", err)
		}
		p = next
		switch string(k) {
		case "nonce", "auth":
			v, _, next, err := rawBytes(b, p)
			if err != nil {
				return h, fmt.Errorf("HELO %s: %w", k, err)
			}
			if string(k) == "nonce" {
				h.Nonce = append([]byte(nil), v...)
			} else {
				h.Auth = append([]byte(nil), v...)
			}
			p = next
		case "keepalive":
			if p >= len(b) || (b[p] != 0xc2 && b[p] != 0xc3) {
				return h, errAt(p, "HELO keepalive must be a boolean")
			}
			h.Keepalive = b[p] == 0xc3
			p++
		default:
			if p, err = skipValue(b, p); err != nil {
				return h, err
			}
		}
	}
	if len(h.Nonce) == 0 {
		return h, errors.New("HELO has no nonce")
	}
	return h, trailing(b, p)
}

// AppendPing encodes a PING (the salt as str, as Fluent Bit sends it).
func AppendPing(dst []byte, p Ping) []byte {
	dst = event.AppendArrayHeader(dst, 6)
	dst = event.AppendString(dst, "PING")
	dst = event.AppendString(dst, p.Hostname)
	dst = event.AppendString(dst, string(p.SharedKeySalt))
	dst = event.AppendString(dst, p.SharedKeyDigest)
	dst = event.AppendString(dst, p.Username)
	return event.AppendString(dst, p.Password)
}

// ParsePing decodes a PING.
func ParsePing(b []byte) (Ping, error) {
	var pg Ping
	p, err := handshakeHead(b, "PING", 6)
	if err != nil {
		return pg, err
	}
	var salt []byte
	if pg.Hostname, p, err = str(b, p, "PING hostname"); err != nil {
		return pg, err
	}
	if salt, _, p, err = rawBytes(b, p); err != nil {
		return pg, fmt.Errorf("PING shared_key_salt: %w", err)
	}
	pg.SharedKeySalt = append([]byte(nil), salt...)
	if pg.SharedKeyDigest, p, err = str(b, p, "PING shared_key_hexdigest"); err != nil {
		return pg, err
	}
	if pg.Username, p, err = str(b, p, "PING username"); err != nil {
		return pg, err
	}
	if pg.Password, p, err = str(b, p, "PING password"); err != nil {
		return pg, err
	}
	return pg, trailing(b, p)
}

// AppendPong encodes a PONG.
func AppendPong(dst []byte, p Pong) []byte {
	dst = event.AppendArrayHeader(dst, 5)
	dst = event.AppendString(dst, "PONG")
	dst = event.AppendBool(dst, p.AuthResult)
	dst = event.AppendString(dst, p.Reason)
	dst = event.AppendString(dst, p.Hostname)
	return event.AppendString(dst, p.SharedKeyDigest)
}

// ParsePong decodes a PONG.
func ParsePong(b []byte) (Pong, error) {
	var pg Pong
	p, err := handshakeHead(b, "PONG", 5)
	if err != nil {
		return pg, err
	}
	if p >= len(b) || (b[p] != 0xc2 && b[p] != 0xc3) {
		return pg, errAt(p, "PONG auth_result must be a boolean")
	}
	pg.AuthResult = b[p] == 0xc3
	p++
	if pg.Reason, p, err = str(b, p, "PONG reason"); err != nil {
		return pg, err
	}
	if pg.Hostname, p, err = str(b, p, "PONG hostname"); err != nil {
		return pg, err
	}
	if pg.SharedKeyDigest, p, err = str(b, p, "PONG shared_key_hexdigest"); err != nil {
		return pg, err
	}
	return pg, trailing(b, p)
}

func handshakeHead(b []byte, want string, n int) (int, error) {
	got, p, err := arrayHeader(b, 0)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", want, err)
	}
	name, p, err := str(b, p, "message type")
	if err != nil {
		return 0, fmt.Errorf("expected %s: %w", want, err)
	}
	if name != want {
		return 0, errAt(1, "expected %s, got %q", want, truncate(name, 32))
	}
	if got != n {
		return 0, errAt(0, "%s must have %d elements, has %d", want, n, got)
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func trailing(b []byte, p int) error {
	if p != len(b) {
		return errAt(p, "%d bytes after the end of the message", len(b)-p)
	}
	return nil
}

// Server holds a forward server's credentials.
type Server struct {
	SharedKey string
	Hostname  string            // self_hostname
	Users     map[string]string // username → password; empty: no user auth
}

// NewHelo makes a greeting with a fresh nonce (and an auth salt when users
// are configured).
func (s *Server) NewHelo() Helo {
	h := Helo{Nonce: random16(), Keepalive: true}
	if len(s.Users) > 0 {
		h.Auth = random16()
	}
	return h
}

// Check verifies a PING against the greeting and returns the PONG to send;
// AuthResult false carries the reason, and the server closes the connection.
func (s *Server) Check(h Helo, p Ping) Pong {
	fail := func(reason string) Pong { return Pong{Reason: reason, Hostname: s.Hostname} }
	if !digestEqual(p.SharedKeyDigest, SharedKeyDigest(p.SharedKeySalt, p.Hostname, h.Nonce, s.SharedKey)) {
		return fail("shared_key mismatch")
	}
	if len(s.Users) > 0 {
		pw, ok := s.Users[p.Username]
		if !ok || !digestEqual(p.Password, PasswordDigest(h.Auth, p.Username, pw)) {
			return fail("username/password mismatch")
		}
	}
	return Pong{AuthResult: true, Hostname: s.Hostname,
		SharedKeyDigest: SharedKeyDigest(p.SharedKeySalt, s.Hostname, h.Nonce, s.SharedKey)}
}

// Client holds a forward client's credentials.
type Client struct {
	SharedKey string
	Hostname  string // self_hostname
	Username  string
	Password  string
}

// NewPing answers a HELO with a fresh salt.
func (c *Client) NewPing(h Helo) Ping {
	p := Ping{Hostname: c.Hostname, SharedKeySalt: random16(), Username: c.Username}
	// Fluent Bit sends the salt as a str; keep it printable so that any
	// server reading it as text gets the same bytes back.
	p.SharedKeySalt = []byte(hex.EncodeToString(p.SharedKeySalt))
	p.SharedKeyDigest = SharedKeyDigest(p.SharedKeySalt, c.Hostname, h.Nonce, c.SharedKey)
	if len(h.Auth) > 0 {
		p.Password = PasswordDigest(h.Auth, c.Username, c.Password)
	} else {
		p.Username = ""
	}
	return p
}

// VerifyPong checks the server's answer: authentication accepted, and a
// digest proving the server knows the shared key.
func (c *Client) VerifyPong(h Helo, p Ping, pong Pong) error {
	if !pong.AuthResult {
		return fmt.Errorf("forward server refused authentication: %s", pong.Reason)
	}
	if !digestEqual(pong.SharedKeyDigest, SharedKeyDigest(p.SharedKeySalt, pong.Hostname, h.Nonce, c.SharedKey)) {
		return errors.New("forward server's shared key digest does not match: wrong shared_key on either side")
	}
	return nil
}
