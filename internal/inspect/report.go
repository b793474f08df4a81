package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cdcflow/cdcflow/capture"
)

// Report is what a status command prints: the capture side (the slot and
// the checkpoint, when known), the consumer groups and their lag, the
// topics, the dead letters, and the problems that make it unhealthy.
type Report struct {
	Slot       *Slot             `json:"slot,omitempty"`
	Checkpoint *CheckpointStatus `json:"checkpoint,omitempty"`
	Groups     []GroupStatus     `json:"groups"`
	Topics     []Topic           `json:"topics"`
	// DeadLetters are the dead-letter topics: their records were set aside.
	DeadLetters []Topic `json:"dead_letters"`
	// Problems say why the report is unhealthy: empty when it is not.
	Problems []string `json:"problems"`
	// At is when the report was made; lag ages are as of it.
	At time.Time `json:"at"`
}

// CheckpointStatus is the last checkpoint capture committed to Kafka.
type CheckpointStatus struct {
	Topic string `json:"topic"`
	Key   string `json:"key"`
	// Found is false when capture has committed none.
	Found bool `json:"found"`
	capture.Checkpoint
}

// GroupStatus is a consumer group in a report: its lag, the topology it
// runs (when known), and the lag's age in seconds as of the report.
type GroupStatus struct {
	Topology string `json:"topology,omitempty"`
	GroupLag
	LagSeconds float64 `json:"lag_seconds"`
}

// AddGroup adds a group's lag to r, as the group of topology ("" when not
// known).
func (r *Report) AddGroup(topology string, gl GroupLag) {
	r.Groups = append(r.Groups, GroupStatus{Topology: topology, GroupLag: gl, LagSeconds: gl.Age(r.At).Seconds()})
}

// Print writes r to w, as JSON or as text.
func (r *Report) Print(w io.Writer, asJSON bool) error {
	if !asJSON {
		return r.WriteText(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Healthy tells whether r has no problems.
func (r *Report) Healthy() bool { return len(r.Problems) == 0 }

// Check adds to r.Problems what makes it unhealthy: a slot that does not
// exist or is inactive, and a group whose lag exceeds one of limits.
func (r *Report) Check(limits []Threshold) {
	if s := r.Slot; s != nil {
		switch {
		case !s.Exists:
			r.Problems = append(r.Problems, fmt.Sprintf("replication slot %s does not exist: capture creates it when it starts", s.Name))
		case !s.Active:
			r.Problems = append(r.Problems, fmt.Sprintf("replication slot %s is inactive: no capture streams from it, and PostgreSQL keeps %s of WAL for it", s.Name, bytesText(s.RetainedBytes)))
		}
	}
	for _, g := range r.Groups {
		for _, l := range limits {
			if l.Records > 0 && g.Records > l.Records {
				r.Problems = append(r.Problems, fmt.Sprintf("consumer group %s is %s records behind, more than --max-lag %d", g.Name, recordsText(g.Lag), l.Records))
			}
			if age := g.Age(r.At); l.Age > 0 && age > l.Age {
				r.Problems = append(r.Problems, fmt.Sprintf("consumer group %s is %s behind, more than --max-lag %s", g.Name, age.Round(time.Millisecond), l.Age))
			}
		}
	}
}

// Threshold is a lag a group may have: records (a number: 10000), or the
// age of its oldest unread record (a duration: 30s, 5m).
type Threshold struct {
	Records int64
	Age     time.Duration
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Threshold) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		*t = Threshold{Records: n}
		return nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		*t = Threshold{Age: d}
		return nil
	}
	return fmt.Errorf("%q is neither a number of records (10000) nor a duration (30s)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (t Threshold) MarshalText() ([]byte, error) {
	if t.Age > 0 {
		return []byte(t.Age.String()), nil
	}
	return []byte(strconv.FormatInt(t.Records, 10)), nil
}

// WriteText writes r as aligned text: sections of the capture side, then
// tables of the groups, the topics and the dead letters, and a last line
// that says ok, or the problems.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if s := r.Slot; s != nil {
		fmt.Fprintf(tw, "replication slot %s\n", s.Name)
		if !s.Exists {
			fmt.Fprintf(tw, "  exists\tno\n")
		} else {
			active := "no"
			if s.Active {
				active = fmt.Sprintf("yes (server process %d)", s.ActivePID)
			}
			behind := "unknown (inactive)"
			if s.BehindMillis != nil {
				behind = fmt.Sprintf("%d ms", *s.BehindMillis)
			}
			fmt.Fprintf(tw, "  active\t%s\n", active)
			fmt.Fprintf(tw, "  confirmed\t%s\n", s.Confirmed)
			fmt.Fprintf(tw, "  server WAL\t%s\t%s not confirmed yet\n", s.ServerWAL, bytesText(s.PendingBytes))
			fmt.Fprintf(tw, "  retained WAL\t%s\tfrom %s (%s)\n", bytesText(s.RetainedBytes), s.Restart, s.WALStatus)
			fmt.Fprintf(tw, "  behind\t%s\n", behind)
		}
	}
	if c := r.Checkpoint; c != nil {
		fmt.Fprintf(tw, "capture checkpoint %s in %s\n", c.Key, c.Topic)
		if !c.Found {
			fmt.Fprintf(tw, "  position\tnone committed yet\n")
		} else {
			fmt.Fprintf(tw, "  position\t%s\n", c.Position)
			fmt.Fprintf(tw, "  confirmable\t%s\n", c.Confirm)
			snapshot := "none"
			if s := c.Snapshot; s != nil && s.Complete() {
				snapshot = fmt.Sprintf("complete (%d tables)", len(s.Tables))
			} else if s != nil {
				snapshot = "pending: " + strings.Join(s.Pending, ", ")
			}
			fmt.Fprintf(tw, "  snapshot\t%s\n", snapshot)
		}
	}
	if r.Slot != nil || r.Checkpoint != nil {
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPOLOGY\tGROUP\tSTATE\tMEMBERS\tLAG\tLAG AGE\tTOPICS")
	for _, g := range r.Groups {
		var topics []string
		for _, t := range g.Topics {
			switch {
			case t.Missing:
				topics = append(topics, t.Topic+" (missing)")
			case t.Records > 0:
				topics = append(topics, fmt.Sprintf("%s %s", t.Topic, recordsText(t.Lag)))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", dash(g.Topology), g.Name, g.State, len(g.Members),
			recordsText(g.Lag), g.Age(r.At).Round(time.Millisecond), dash(strings.Join(topics, ", ")))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tRECORDS")
	for _, t := range r.Topics {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, partitionsText(t), topicRecords(t))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DEAD-LETTER TOPIC\tPARTITIONS\tRECORDS")
	for _, t := range r.DeadLetters {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, partitionsText(t), topicRecords(t))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if r.Healthy() {
		_, err := fmt.Fprintln(w, "status: ok")
		return err
	}
	for _, p := range r.Problems {
		if _, err := fmt.Fprintln(w, "status: unhealthy: "+p); err != nil {
			return err
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// recordsText prints a count of records, "~" before a count of offsets.
func recordsText(l Lag) string {
	if !l.Exact {
		return "~" + strconv.FormatInt(l.Records, 10)
	}
	return strconv.FormatInt(l.Records, 10)
}

func partitionsText(t Topic) string {
	if t.Missing {
		return "-"
	}
	return strconv.Itoa(t.Partitions)
}

func topicRecords(t Topic) string {
	if t.Missing {
		return "no such topic"
	}
	return recordsText(Lag{Records: t.Records, Exact: t.Exact})
}

// bytesText prints n bytes in binary units.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
