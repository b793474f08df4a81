package dashboard

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// A Chart is what the page draws of one metric: a series of a topology, or
// the per-period series of one family merged (revenue_cents_per_minute:
// 2026-11-21T21 and :2026-11-21T22 make one chart of minutes), or a ranking.
// The page replaces a chart whole whenever the server sends it again.
type Chart struct {
	// ID names the chart on the page: <topology>/<series or family>.
	ID       string `json:"id"`
	Topology string `json:"topology"`
	// Series is the series' name, or the family's for per-period series.
	Series string `json:"series"`
	// Title is Series for people: "Revenue per day".
	Title string `json:"title"`
	// Kind is "buckets" for a hash (bucket → value) or "ranking" for a
	// sorted set.
	Kind string `json:"kind"`
	// Axis is how the buckets read: "time" (dates, hours, minutes, in
	// order), "number" (in numeric order) or "category" (alphabetical).
	Axis string `json:"axis"`
	// Money is set when the series counts cents (its name says so): the
	// page shows values as amounts.
	Money bool `json:"money,omitempty"`
	// Points are the buckets in axis order (a ranking's members highest
	// first), at most maxPoints of them (rankings: maxRanked).
	Points []Point `json:"points"`
	// Total is the sum over every bucket (a ranking's: over the points).
	Total int64 `json:"total"`
	// Buckets is how many buckets (members) there are, shown or not.
	Buckets int64 `json:"buckets"`
	// Removed says the chart's series are gone (expired or deleted).
	Removed bool `json:"removed,omitempty"`
}

// A Point is one bucket of a chart and its value; it is JSON [label, value].
type Point struct {
	Label string
	Value int64
}

// MarshalJSON writes p as [label, value].
func (p Point) MarshalJSON() ([]byte, error) { return json.Marshal([]any{p.Label, p.Value}) }

// UnmarshalJSON reads [label, value].
func (p *Point) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("point %s: want [label, value]", b)
	}
	if err := json.Unmarshal(pair[0], &p.Label); err != nil {
		return err
	}
	return json.Unmarshal(pair[1], &p.Value)
}

const (
	// maxPoints bounds the buckets a chart of a hash carries: the latest
	// ones of a time or number axis, the largest of a category axis.
	maxPoints = 500
	// maxRanked bounds the members a ranking carries, highest first.
	maxRanked = 50
)

const (
	kindBuckets = "buckets"
	kindRanking = "ranking"

	axisTime     = "time"
	axisNumber   = "number"
	axisCategory = "category"
)

// periodData is what one series of a chart holds: a hash's buckets, or a
// ranking's top members (highest first) and how many it has.
type periodData struct {
	// Period is the part of the series name after the family's (the hour of
	// a per-minute series), "" for a series of its own.
	Period  string
	Buckets map[string]int64
	Ranking []Point
	Members int64
}

// buildChart makes the chart of topology's series family (a series name,
// or the family of per-period series) from what its series hold: one
// periodData per series.
func buildChart(topology, family string, ranked bool, series []periodData) Chart {
	title, money := titleOf(family)
	c := Chart{ID: topology + "/" + family, Topology: topology, Series: family, Title: title, Money: money,
		Kind: kindBuckets, Points: []Point{}}
	if ranked {
		c.Kind, c.Axis = kindRanking, axisCategory
		for _, s := range series {
			c.Points = append(c.Points, s.Ranking...)
			c.Buckets += s.Members
		}
		slices.SortStableFunc(c.Points, func(a, b Point) int {
			return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(a.Label, b.Label))
		})
		c.Points = c.Points[:min(len(c.Points), maxRanked)]
		for _, p := range c.Points {
			c.Total += p.Value
		}
		c.Removed = len(c.Points) == 0
		return c
	}
	for _, s := range series {
		for bucket, v := range s.Buckets {
			label := bucket
			if s.Period != "" {
				label = s.Period + ":" + bucket
			}
			c.Points = append(c.Points, Point{label, v})
			c.Total += v
		}
	}
	c.Buckets = int64(len(c.Points))
	c.Removed = len(c.Points) == 0
	c.Axis = axisOf(c.Points)
	c.Points = ordered(c.Axis, c.Points)
	return c
}

// timeLabel matches buckets that name a date or a time of day in an order
// that sorts as text: 2026-11-21, 2026-11, 2026-11-21T21, 2026-11-21 21:04,
// 2026-11-21T21:04:05, 21:04.
var timeLabel = regexp.MustCompile(`^(\d{4}-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2})?)?)?)?|\d{2}:\d{2}(:\d{2})?)$`)

// axisOf tells how labels read: as times when every one is a date or a
// time, numbers when every one is a number, categories otherwise.
func axisOf(points []Point) string {
	times, numbers := true, true
	for _, p := range points {
		times = times && timeLabel.MatchString(p.Label)
		_, err := strconv.ParseFloat(p.Label, 64)
		numbers = numbers && err == nil
	}
	switch {
	case len(points) == 0:
		return axisCategory
	case times:
		return axisTime
	case numbers:
		return axisNumber
	}
	return axisCategory
}

// ordered sorts points along axis and keeps at most maxPoints: the last
// ones of a time or number axis, the largest ones of a category axis.
func ordered(axis string, points []Point) []Point {
	byLabel := func(a, b Point) int { return cmp.Compare(a.Label, b.Label) }
	switch axis {
	case axisNumber:
		slices.SortFunc(points, func(a, b Point) int {
			x, _ := strconv.ParseFloat(a.Label, 64)
			y, _ := strconv.ParseFloat(b.Label, 64)
			return cmp.Or(cmp.Compare(x, y), byLabel(a, b))
		})
	case axisCategory:
		if len(points) > maxPoints {
			slices.SortFunc(points, func(a, b Point) int { return cmp.Or(cmp.Compare(b.Value, a.Value), byLabel(a, b)) })
			points = points[:maxPoints]
		}
		slices.SortFunc(points, byLabel)
		return points
	default:
		slices.SortFunc(points, byLabel)
	}
	return points[max(0, len(points)-maxPoints):]
}

// titleOf makes a series name read as a title, "revenue_cents_per_day" →
// "Revenue per day", and reports whether the series counts cents (a word
// "cents" in its name), which the title then leaves out.
func titleOf(series string) (title string, money bool) {
	words := strings.FieldsFunc(series, func(r rune) bool { return r == '_' || r == '-' || r == '.' || unicode.IsSpace(r) })
	kept := words[:0]
	for _, w := range words {
		if strings.EqualFold(w, "cents") {
			money = true
			continue
		}
		kept = append(kept, w)
	}
	if len(kept) == 0 {
		return series, money
	}
	title = strings.Join(kept, " ")
	r := []rune(title)
	r[0] = unicode.ToUpper(r[0])
	return string(r), money
}
