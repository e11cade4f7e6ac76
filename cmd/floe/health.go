package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealthcheck implements `floe healthcheck`: a probe for images without a
// shell or curl (Docker HEALTHCHECK, Compose healthcheck). Exit 0 when the
// endpoint answers 200.
func runHealthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:2020/api/v1/ready", "endpoint to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "probe timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(*url)
	if err != nil {
		fmt.Fprintf(stderr, "floe healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "floe healthcheck: %s answered %d: %s", *url, resp.StatusCode, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s", body)
	return 0
}
