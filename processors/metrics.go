package processors

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
)

// metricState is what a metrics processor remembers per row: the position
// of the last change it applied and what that version of the row contributed.
type metricState struct {
	Position change.Position     `json:"position"`
	Samples  []topologies.Sample `json:"samples,omitempty"`
}

// metricStateCodec stores metricState in the group table as JSON.
type metricStateCodec struct{}

func (metricStateCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (metricStateCodec) Decode(b []byte) (any, error) {
	var s metricState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode metric state: %w", err)
	}
	return &s, nil
}

// metricStep computes what ev does to the metrics: the row's new state and the
// deltas to apply. It reports skip when ev is at or before the position the
// row's state already reflects (a redelivered or replayed change).
func metricStep(node *topologies.MetricsNode, prev *metricState, ev *change.Event) (next *metricState, deltas []topologies.Sample, skip bool, err error) {
	if prev != nil && ev.Position.Compare(prev.Position) <= 0 {
		return prev, nil, true, nil
	}
	samples, err := node.Measure(ev.After)
	if err != nil {
		return nil, nil, false, err
	}
	var old []topologies.Sample
	if prev != nil {
		old = prev.Samples
	}
	return &metricState{Position: ev.Position, Samples: samples}, diff(old, samples), false, nil
}

// diff returns new minus old per (series, bucket), leaving out zeros, in a
// stable order.
func diff(old, new []topologies.Sample) []topologies.Sample {
	type cell struct{ series, bucket string }
	sum := map[cell]int64{}
	for _, s := range new {
		sum[cell{s.Series, s.Bucket}] += s.Value
	}
	for _, s := range old {
		sum[cell{s.Series, s.Bucket}] -= s.Value
	}
	var out []topologies.Sample
	for c, v := range sum {
		if v != 0 {
			out = append(out, topologies.Sample{Series: c.series, Bucket: c.bucket, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Series != out[j].Series {
			return out[i].Series < out[j].Series
		}
		return out[i].Bucket < out[j].Bucket
	})
	return out
}
