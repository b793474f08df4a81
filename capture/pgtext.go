package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// Parsers of PostgreSQL's text output, as pgoutput sends values, under the
// session settings capture's replication connection pins (DateStyle ISO,
// IntervalStyle postgres, lc_monetary C, TimeZone UTC).

// parseNumeric parses a numeric: a *big.Rat, or a float64 for NaN and
// ±Infinity, which have no exact decimal value.
func parseNumeric(s string) (any, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("numeric %q is not a decimal number", s)
	}
	return r, nil
}

// parseMoney parses money as lc_monetary=C prints it: "$1,234.56",
// "-$1,234.56". Other locales print other symbols and separators; capture
// sets lc_monetary=C on its replication connection so that PostgreSQL never
// does.
func parseMoney(s string) (*big.Rat, error) {
	t := strings.TrimSpace(s)
	neg := false
	if strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")") {
		neg, t = true, t[1:len(t)-1]
	}
	if strings.HasPrefix(t, "-") {
		neg, t = true, t[1:]
	}
	t = strings.TrimPrefix(t, "$")
	whole, frac, _ := strings.Cut(t, ".")
	whole = strings.ReplaceAll(whole, ",", "")
	n, ok := new(big.Rat).SetString(whole + "." + frac)
	if !ok || !isDigits(whole) || !isDigits(frac) && frac != "" {
		return nil, fmt.Errorf("money %q is not in the C locale's format ($1,234.56); capture sets lc_monetary=C on its replication connection, check that the server accepts it", s)
	}
	if neg {
		n.Neg(n)
	}
	return n, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// parseClock parses HH:MM:SS[.ffffff] into its parts; hours may exceed 23
// (time allows 24:00:00, intervals any number of hours).
func parseClock(s string) (hours int64, minutes, seconds, micros int, err error) {
	bad := fmt.Errorf("%q is not HH:MM:SS[.ffffff]", s)
	h, rest, ok1 := strings.Cut(s, ":")
	m, sec, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || len(m) != 2 || len(sec) < 2 {
		return 0, 0, 0, 0, bad
	}
	whole, frac, hasFrac := strings.Cut(sec, ".")
	if len(whole) != 2 || hasFrac && (len(frac) == 0 || len(frac) > 6) {
		return 0, 0, 0, 0, bad
	}
	hv, err1 := strconv.ParseInt(h, 10, 64)
	mv, err2 := strconv.Atoi(m)
	sv, err3 := strconv.Atoi(whole)
	us := 0
	var err4 error
	if hasFrac {
		us, err4 = strconv.Atoi(frac + strings.Repeat("0", 6-len(frac)))
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil || hv < 0 || mv > 59 || sv > 59 || us < 0 {
		return 0, 0, 0, 0, bad
	}
	return hv, mv, sv, us, nil
}

// parseTime parses a time (without time zone) into the time since midnight.
func parseTime(s string) (time.Duration, error) {
	h, m, sec, us, err := parseClock(s)
	if err != nil {
		return 0, fmt.Errorf("time %w", err)
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond
	if d > 24*time.Hour {
		return 0, fmt.Errorf("time %q is past 24:00:00", s)
	}
	return d, nil
}

// parseTimeTZ parses a time with time zone, "10:15:30.5+02" or
// "10:15:30-03:30", and returns it as Debezium's ZonedTime prints it: the
// same instant in UTC, ISO-8601, with as many fractional digits as needed
// ("08:15:30.5Z"). The end of the day in UTC stays "24:00:00Z", as in
// Debezium.
func parseTimeTZ(s string) (string, error) {
	i := strings.LastIndexAny(s, "+-")
	if i < 0 {
		return "", fmt.Errorf("timetz %q has no UTC offset", s)
	}
	d, err := parseTime(s[:i])
	if err != nil {
		return "", fmt.Errorf("timetz %q: %w", s, err)
	}
	var off time.Duration
	for j, part := range strings.Split(s[i+1:], ":") {
		n, err := strconv.Atoi(part)
		if err != nil || len(part) != 2 || j > 2 {
			return "", fmt.Errorf("timetz %q has a malformed UTC offset", s)
		}
		off += time.Duration(n) * [...]time.Duration{time.Hour, time.Minute, time.Second}[j]
	}
	if s[i] == '-' {
		off = -off
	}
	if d == 24*time.Hour && off == 0 {
		return "24:00:00Z", nil
	}
	utc := ((d-off)%(24*time.Hour) + 24*time.Hour) % (24 * time.Hour)
	t := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Add(utc)
	return t.Format("15:04:05.999999") + "Z", nil
}

// daysPerMonth is the month length Debezium's MicroDuration assumes:
// 365.25 / 12.
const daysPerMonth = 365.25 / 12

// parseInterval parses an interval as IntervalStyle postgres prints it ("1
// year 2 mons 3 days 04:05:06.5", "-1 years +2 mons -00:00:01") and returns
// Debezium's MicroDuration value: the number of microseconds, a month
// counting 30.4375 days and a day 24 hours. It repeats the floating-point
// steps of Debezium's MicroDuration.durationMicros on the fields PostgreSQL's
// JDBC driver parses, so the approximation rounds as Debezium's does.
func parseInterval(s string) (change.MicroDuration, error) {
	var years, months, days, hours, minutes int64
	var wholeSeconds, micros int64
	bad := func(why string) (change.MicroDuration, error) {
		return 0, fmt.Errorf("interval %q: %s; capture sets intervalstyle=postgres on its replication connection", s, why)
	}
	fields := strings.Fields(s)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Contains(f, ":") {
			neg := strings.HasPrefix(f, "-")
			h, m, sec, us, err := parseClock(strings.TrimLeft(f, "+-"))
			if err != nil {
				return bad(err.Error())
			}
			hours, minutes, wholeSeconds, micros = h, int64(m), int64(sec), int64(us)
			if neg {
				hours, minutes, wholeSeconds, micros = -hours, -minutes, -wholeSeconds, -micros
			}
			continue
		}
		if i+1 == len(fields) {
			return bad(fmt.Sprintf("number %s has no unit", f))
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(f, "+"), 10, 64)
		if err != nil {
			return bad(err.Error())
		}
		i++
		switch fields[i] {
		case "year", "years":
			years = n
		case "mon", "mons":
			months = n
		case "day", "days":
			days = n
		default:
			return bad(fmt.Sprintf("unknown unit %q", fields[i]))
		}
	}
	// Each step is rounded to float64 on its own, as Java computes it (an
	// explicit conversion keeps Go from fusing a multiply and an add).
	seconds := float64(wholeSeconds) + float64(micros)/1e6
	numberOfDays := float64(float64(years*12+months)*daysPerMonth) + float64(days)
	numberOfSeconds := float64(float64(float64(float64(float64(numberOfDays*24)+float64(hours))*60)+float64(minutes))*60) + seconds
	return change.MicroDuration(javaLong(float64(numberOfSeconds * 1e6))), nil
}

// javaLong converts f to int64 as Java's (long) cast does: toward zero,
// saturating at the int64 range, NaN to 0.
func javaLong(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// parseHstore parses hstore's text form, `"a"=>"1", "b"=>NULL`, and returns
// it as Debezium's hstore.handling.mode=json writes it: a JSON object of
// string (or null) values, {"a":"1","b":null}, keys in PostgreSQL's order.
func parseHstore(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('{')
	rest := strings.TrimSpace(s)
	for n := 0; rest != ""; n++ {
		if n > 0 {
			if !strings.HasPrefix(rest, ",") {
				return "", fmt.Errorf("hstore %q: expected ',' at %q", s, rest)
			}
			rest = strings.TrimSpace(rest[1:])
		}
		key, r, err := hstoreItem(rest)
		if err != nil || key == nil {
			return "", fmt.Errorf("hstore %q: malformed key at %q", s, rest)
		}
		r = strings.TrimSpace(r)
		if !strings.HasPrefix(r, "=>") {
			return "", fmt.Errorf("hstore %q: expected '=>' at %q", s, r)
		}
		val, r, err := hstoreItem(strings.TrimSpace(r[2:]))
		if err != nil {
			return "", fmt.Errorf("hstore %q: %w", s, err)
		}
		rest = strings.TrimSpace(r)
		if n > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(*key)
		b.Write(k)
		b.WriteByte(':')
		if val == nil {
			b.WriteString("null")
		} else {
			v, _ := json.Marshal(*val)
			b.Write(v)
		}
	}
	b.WriteByte('}')
	return b.String(), nil
}

// hstoreItem reads a quoted string (backslash escapes the next character)
// or the bare word NULL from the front of s.
func hstoreItem(s string) (*string, string, error) {
	if strings.HasPrefix(s, "NULL") {
		return nil, s[4:], nil
	}
	if !strings.HasPrefix(s, `"`) {
		return nil, s, fmt.Errorf("expected a quoted string at %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i < len(s) {
				b.WriteByte(s[i])
			}
		case '"':
			v := b.String()
			return &v, s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return nil, s, fmt.Errorf("unterminated string at %q", s)
}

// arrayDelimiter is the element delimiter of arrays of elemType (pg_type's
// typdelim): ',' for every built-in type but box.
func arrayDelimiter(elemType string) byte {
	if elemType == "box" {
		return ';'
	}
	return ','
}

// errMultiDim is why capture rejects an array of more than one dimension.
var errMultiDim = errors.New("is a multi-dimensional array; capture supports one-dimensional arrays (Debezium maps them to a flat list); store it one-dimensional, or as json")

// parseArray parses a one-dimensional array's text form: {1,2,NULL},
// {"a b","with \"quote\"",NULL,"NULL"}, optionally with explicit bounds,
// [0:2]={1,2,3}. elem parses each non-NULL element's text.
func parseArray(s string, delim byte, elem func(string) (any, error)) ([]any, error) {
	t := s
	if strings.HasPrefix(t, "[") {
		eq := strings.Index(t, "=")
		if eq < 0 {
			return nil, fmt.Errorf("array %q: bounds without '='", s)
		}
		if strings.Count(t[:eq], "[") > 1 {
			return nil, fmt.Errorf("array %q %w", s, errMultiDim)
		}
		t = t[eq+1:]
	}
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return nil, fmt.Errorf("array %q is not enclosed in braces", s)
	}
	body := t[1 : len(t)-1]
	out := []any{}
	if body == "" {
		return out, nil
	}
	for i := 0; ; {
		var text string
		quoted := false
		switch {
		case i < len(body) && body[i] == '{':
			return nil, fmt.Errorf("array %q %w", s, errMultiDim)
		case i < len(body) && body[i] == '"':
			quoted = true
			var b strings.Builder
			i++
			for ; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
					if i == len(body) {
						break
					}
				}
				b.WriteByte(body[i])
			}
			if i >= len(body) {
				return nil, fmt.Errorf("array %q has an unterminated quoted element", s)
			}
			i++ // the closing quote
			text = b.String()
		default:
			j := strings.IndexByte(body[i:], delim)
			if j < 0 {
				j = len(body) - i
			}
			text = strings.TrimSpace(body[i : i+j])
			i += j
		}
		if !quoted && strings.EqualFold(text, "NULL") {
			out = append(out, nil)
		} else {
			v, err := elem(text)
			if err != nil {
				return nil, fmt.Errorf("array element %d: %w", len(out)+1, err)
			}
			out = append(out, v)
		}
		if i == len(body) {
			return out, nil
		}
		if body[i] != delim {
			return nil, fmt.Errorf("array %q: expected %q after element %d", s, delim, len(out))
		}
		i++
	}
}
