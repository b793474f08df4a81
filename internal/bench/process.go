package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a child process the bench measures: capture, or a processor.
// It notes when stderr first shows each of the marks it watches for, keeps
// the last lines of stderr for errors, and hands stdout lines to onStdout.
type process struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{} // closed when it exited
	err    error         // its exit error, once done is closed
	output sync.WaitGroup

	mu    sync.Mutex
	marks map[string]time.Time
	tail  []string
}

func startProcess(env []string, watch []string, onStdout func(string), name string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(name, args...), done: make(chan struct{}), marks: map[string]time.Time{}}
	p.cmd.Env = env
	// A bench that dies leaves no capture or processor running on the
	// shared services.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	var stdout io.ReadCloser
	if onStdout != nil {
		if stdout, err = p.cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.output.Add(1)
	go func() {
		defer p.output.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line, now := sc.Text(), time.Now()
			p.mu.Lock()
			for _, w := range watch {
				if _, seen := p.marks[w]; !seen && strings.Contains(line, w) {
					p.marks[w] = now
				}
			}
			if p.tail = append(p.tail, line); len(p.tail) > 20 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
	}()
	if stdout != nil {
		p.output.Add(1)
		go func() {
			defer p.output.Done()
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				onStdout(sc.Text())
			}
		}()
	}
	go func() {
		p.output.Wait()
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Tail returns the last lines the process wrote to stderr.
func (p *process) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// exitedError says that the process ended before what was waited for.
func (p *process) exitedError(what string) error {
	return fmt.Errorf("%s exited (%v) before %s; its last lines:\n%s", p.name, p.err, what, p.Tail())
}

// waitMark waits until stderr shows mark, and returns when it first did.
func (p *process) waitMark(ctx context.Context, mark string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		at, ok := p.marks[mark]
		p.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-p.done:
			return time.Time{}, p.exitedError("logging " + strconv.Quote(mark))
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s did not log %q within %v; its last lines:\n%s", p.name, mark, timeout, p.Tail())
		}
	}
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process with SIGTERM (SIGKILL after 30s) and waits for it.
// A process that ended by itself with an error returns that error.
func (p *process) stop() error {
	if p.exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed", p.name)
	}
}

// memory returns a field of /proc/<pid>/status in bytes: VmHWM (the peak
// resident set size) or VmRSS (the current one).
func (p *process) memory(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read %s's memory: %w", p.name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no " + field + " in /proc/<pid>/status")
}
