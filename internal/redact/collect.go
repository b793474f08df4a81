package redact

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"reflect"
	"strings"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"
)

// Collect adds to s every secret the settings in v (a struct, and the
// structs it holds) carry: the password of each string field tagged
// `redact:"url"` (a URL or DSN), each string field tagged `redact:"secret"`,
// and the contents (white space trimmed) of the file each string field
// tagged `redact:"file"` names, when it can be read.
func Collect(v reflect.Value, s *Secrets) {
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct:
			Collect(fv, s)
		case f.Tag.Get("redact") == "url" && fv.Kind() == reflect.String:
			s.AddURL(fv.String())
		case f.Tag.Get("redact") == "secret" && fv.Kind() == reflect.String:
			s.Add(fv.String())
		case f.Tag.Get("redact") == "file" && fv.Kind() == reflect.String && fv.String() != "":
			if b, err := os.ReadFile(fv.String()); err == nil {
				s.Add(strings.TrimSpace(string(b)))
			}
		}
	}
}

// RouteLibraryLogs sends what client libraries log on their own — go-redis,
// sarama and the standard library's log package — through redaction: to log
// (go-redis's, at debug level) and to w (the others; sarama's only when log
// is at debug level).
func RouteLibraryLogs(log *slog.Logger, w io.Writer) {
	stdlog.SetOutput(w)
	redis.SetLogger(redisLogger{log})
	sarama.Logger = stdlog.New(io.Discard, "", 0)
	if log.Enabled(context.Background(), slog.LevelDebug) {
		sarama.Logger = stdlog.New(w, "sarama: ", stdlog.LstdFlags)
	}
}

// redisLogger sends go-redis's log lines (failed dials, say) to slog at
// debug level: the errors they describe reach the caller too.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Debug(fmt.Sprintf(format, v...), "component", "redis")
}
