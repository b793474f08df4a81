// Package pgtemp starts throwaway PostgreSQL clusters and Redis servers from
// the binaries installed on the machine, for demos: a cluster lives in a
// temporary directory, listens on a free loopback port with
// wal_level=logical, and is gone once stopped.
package pgtemp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	dir, bin string
	port     int
	cred     *syscall.Credential
}

// FindBin returns the newest PostgreSQL server binaries directory installed
// (/usr/lib/postgresql/<version>/bin), or an error that says how to get one.
func FindBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", errors.New("no PostgreSQL server binaries (initdb) found; install them (apt-get install postgresql) or pass a database with --pg-dsn")
	}
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(found[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(found[j])))
		return vi < vj
	})
	return found[len(found)-1], nil
}

// Start initialises and starts a cluster with the binaries in bin (see
// [FindBin]): user cdcflow without a password, loopback TCP only. As root
// it runs the server as the OS user postgres, since PostgreSQL refuses to
// run as root.
func Start(ctx context.Context, bin string) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "cdcflow-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, errors.New("running as root, and there is no OS user postgres to run PostgreSQL as (it refuses root); create one, or pass a database with --pg-dsn")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if c.port, err = freePort(); err != nil {
		c.remove()
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run(ctx, "initdb", "-D", data, "-U", "cdcflow", "--auth=trust", "-E", "UTF8", "--no-locale"); err != nil {
		c.remove()
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nwal_level = logical\n"+
		"max_replication_slots = 16\nmax_wal_senders = 16\nfsync = off\nshared_buffers = 64MB\n", c.port, dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		f.Close()
	}
	if err != nil {
		c.remove()
		return nil, err
	}
	if out, err := c.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "postgres.log"), "-w", "-t", "60", "start"); err != nil {
		c.remove()
		return nil, fmt.Errorf("start PostgreSQL: %w: %s", err, out)
	}
	return c, nil
}

// DSN is the cluster's connection string (database postgres).
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://cdcflow@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Stop stops the cluster and deletes it.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "stop")
	c.remove()
	if err != nil {
		return fmt.Errorf("stop PostgreSQL: %w: %s", err, out)
	}
	return nil
}

func (c *Cluster) remove() { os.RemoveAll(c.dir) }

// run runs a binary of the cluster as the cluster's user.
func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	out, err := cmd.CombinedOutput()
	return []byte(strings.TrimSpace(string(out))), err
}

// Redis is a running throwaway Redis server.
type Redis struct {
	cmd  *exec.Cmd
	addr string
}

// StartRedis starts redis-server on a free loopback port, without
// persistence, once it accepts connections.
func StartRedis(ctx context.Context) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("no redis-server found; install it (apt-get install redis-server) or pass a Redis with --redis-addr")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := net.Dial("tcp", r.addr); err == nil {
			conn.Close()
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Stop()
			return nil, errors.New("redis-server did not accept connections within 10s")
		}
	}
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return r.addr }

// Stop stops the server.
func (r *Redis) Stop() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
