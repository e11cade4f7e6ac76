// Package storelock gives one process at a time a JetStream store directory.
//
// nats-server takes no lock on its store: two embedded servers on one
// directory both start and write the same files, which corrupts the store or
// has one pipeline deliver the other's backlog. Every Floe process that opens
// a store therefore takes an exclusive flock on <dir>/floe.lock first and
// holds it for its life. flock belongs to the open file, so the kernel drops
// it when the holder exits for any reason, SIGKILL included: there is never a
// stale lock to clean up, and the file itself is left in place on purpose
// (removing it would let a newcomer lock a fresh inode while another process
// still holds the old one).
package storelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file inside a store directory.
const FileName = "floe.lock"

// Lock is a held store lock.
type Lock struct {
	f    *os.File
	path string
}

// HeldError says the store is owned by another process.
type HeldError struct {
	Dir string // the store directory
	PID int    // the holder's process id; 0 when it could not be read
}

func (e *HeldError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("storage %s is in use by %s (lock %s): two processes must never share one JetStream store; "+
		"stop that process, or give this one its own directory with storage.path in [SERVICE], --storage-path DIR "+
		"(-b DIR), or XDG_STATE_HOME for the default location",
		e.Dir, holder, filepath.Join(e.Dir, FileName))
}

// ErrHeld matches a HeldError with errors.Is.
var ErrHeld = errors.New("storage in use by another process")

func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Acquire takes dir's lock without waiting, creating dir when needed. It
// fails with a *HeldError when another process (or another Lock in this
// one) holds it.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage lock: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage lock: open %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("storage lock: %s: %w", path, err)
	}
	if held {
		pid := readPID(f)
		f.Close()
		return nil, &HeldError{Dir: dir, PID: pid}
	}
	// The PID is only for the message a second process prints.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}, nil
}

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

// Release gives the store up. The process exiting does the same.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0
	}
	return pid
}
