// Package connect builds the clients of the services cdcflow's binaries
// talk to from their settings (the schema registry, Redis, Elasticsearch),
// and checks that each answers, with errors that name the setting to fix
// and never show a password: credentials in a URL are handed to the client
// apart from it, so that a client library never quotes them.
package connect

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/internal/redact"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sr"
)

// Registry returns a client of the schema registry at raw, named by setting
// in errors. Credentials in raw, or in o, become basic auth; o.TLS secures an
// https URL.
func Registry(setting, raw string, o Options) (*sr.Client, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s is not an http(s) URL; set it like http://127.0.0.1:8081", setting)
	}
	user, pw, err := credentials(setting, u, o)
	if err != nil {
		return nil, err
	}
	opts := []sr.ClientOpt{}
	if user != "" || pw != "" {
		opts = append(opts, sr.BasicAuth(user, pw))
	}
	if o.TLS != nil {
		if u.Scheme != "https" {
			return nil, fmt.Errorf("%s is http, but TLS settings are given for it: make it https, or drop them", setting)
		}
		opts = append(opts, sr.DialTLSConfig(o.TLS))
	}
	client, err := sr.NewClient(append(opts, sr.URLs(u.String()))...)
	if err != nil {
		return nil, fmt.Errorf("schema registry client for %s: %w", u, err)
	}
	return client, nil
}

// credentials returns the user and password of u or o, and strips them
// from u, so that no error quoting u shows them.
func credentials(setting string, u *url.URL, o Options) (user, password string, err error) {
	if u.User != nil {
		if o.User != "" || o.Password != "" {
			return "", "", fmt.Errorf("%s carries credentials and they are given apart from it too: keep one of them", setting)
		}
		user = u.User.Username()
		password, _ = u.User.Password()
		u.User = nil
		return user, password, nil
	}
	return o.User, o.Password, nil
}

// Redis returns a client of Redis at addr, host:port or a redis:// or
// rediss:// URL, once it answers a PING within 5s. o's credentials
// authenticate (an ACL user, or the default user with a password alone) and
// o.TLS encrypts the connection (a rediss:// URL alone trusts the system's
// roots).
func Redis(ctx context.Context, setting, addr string, o Options) (*redis.Client, error) {
	opts := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			return nil, fmt.Errorf("%s %s: %v; set it like 127.0.0.1:6379 or redis://user:password@host:6379/0", setting, redact.URL(addr), redact.URL(err.Error()))
		}
	}
	if o.User != "" || o.Password != "" {
		if opts.Username != "" || opts.Password != "" {
			return nil, fmt.Errorf("%s carries credentials and they are given apart from it too: keep one of them", setting)
		}
		opts.Username, opts.Password = o.User, o.Password
	}
	if o.TLS != nil {
		tc := o.TLS.Clone()
		if tc.ServerName == "" {
			if host, _, err := net.SplitHostPort(opts.Addr); err == nil {
				tc.ServerName = host
			}
		}
		opts.TLSConfig = tc
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("Redis unreachable at %s: %v; check %s, its credentials, and that Redis is running", redact.URL(addr), err, setting)
	}
	return rdb, nil
}

// ParseElasticsearch checks raw, an Elasticsearch URL. Its errors never
// show the URL, which may hold a password.
func ParseElasticsearch(setting, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s is not an http(s) URL; set it like http://127.0.0.1:9200", setting)
	}
	return u, nil
}

// Elasticsearch returns a client of Elasticsearch at raw once it answers
// its cluster health within 5s, and raw as it may be shown (the password
// masked). Credentials in raw, or in o, become basic auth; o.TLS secures an
// https URL.
func Elasticsearch(ctx context.Context, setting, raw string, o Options) (*elasticsearch.Client, string, error) {
	u, err := ParseElasticsearch(setting, raw)
	if err != nil {
		return nil, "", err
	}
	shown := u.Redacted()
	cfg := elasticsearch.Config{}
	if cfg.Username, cfg.Password, err = credentials(setting, u, o); err != nil {
		return nil, shown, err
	}
	if o.TLS != nil {
		if u.Scheme != "https" {
			return nil, shown, fmt.Errorf("%s is http, but TLS settings are given for it: make it https, or drop them", setting)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = o.TLS.Clone()
		cfg.Transport = tr
	}
	cfg.Addresses = []string{u.String()}
	es, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, shown, fmt.Errorf("Elasticsearch client for %s: %v; check %s", shown, err, setting)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := esapi.ClusterHealthRequest{}.Do(pctx, es)
	if err != nil {
		return nil, shown, fmt.Errorf("Elasticsearch unreachable at %s: %v; check %s and that Elasticsearch is running", shown, err, setting)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.IsError() {
		return nil, shown, fmt.Errorf("Elasticsearch at %s answered %s; check %s and the credentials in it", shown, res.Status(), setting)
	}
	return es, shown, nil
}
