package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The stream's timing. Variables, so that tests can shorten them.
var (
	// flushInterval is how long notifications are gathered before the
	// charts they touch are read again and sent: a burst of changes costs
	// one read per chart, not one per change.
	flushInterval = 200 * time.Millisecond
	// rescanInterval is how often every topology's series are listed and
	// read again: series that expired (per-period series with a TTL) leave
	// the page, and what a lost notification missed shows up.
	rescanInterval = 30 * time.Second
	// pingInterval is how often an idle event stream gets a comment line,
	// so that a browser gone without a word is noticed by a failed write.
	pingInterval = 15 * time.Second
	// writeTimeout bounds one write to a browser: a browser that stops
	// reading is dropped instead of holding its handler forever.
	writeTimeout = 10 * time.Second
)

// subscriberBuffer is how many frames a browser may be behind before the
// stream drops it; its EventSource reconnects and starts again from a
// snapshot.
const subscriberBuffer = 32

// stream fans the metrics' changes out to the browsers. One goroutine (run)
// owns the charts: it holds the single Redis subscription of the binary to
// every topology's update channel, gathers the series each notification
// names, reads the charts they belong to again from Redis, and sends those
// that changed to every subscriber. A subscriber first gets a snapshot of
// every chart, taken from the same state, so that what it is sent next
// applies on top of it in order.
type stream struct {
	src        *metricsSource // nil without metrics
	topologies []string       // the topologies with metrics
	log        *slog.Logger

	register, unregister chan *subscriber
	done                 chan struct{} // closed once run returns

	// subscribers counts the browsers connected.
	subscribers atomic.Int64
}

// A subscriber is one browser's event stream: frames, each a whole
// Server-Sent Event. The stream closes ch when it drops the subscriber.
type subscriber struct{ ch chan []byte }

func newStream(src *metricsSource, topologies []string, log *slog.Logger) *stream {
	return &stream{src: src, topologies: topologies, log: log,
		register: make(chan *subscriber), unregister: make(chan *subscriber), done: make(chan struct{})}
}

// chartState is a chart as the browsers have it, with the series it is
// made of.
type chartState struct {
	refs  map[string]seriesRef // by key
	chart Chart
	json  []byte
}

// state is what run owns.
type state struct {
	charts map[string]*chartState // by chart ID
	byKey  map[string]string      // series key → chart ID
	subs   map[*subscriber]bool
	// dirty are the charts to read again; unknown the keys notifications
	// named that no chart has yet, by topology.
	dirty   map[string]bool
	unknown map[string]map[string]bool
	// rescan asks the next flush to list and read every series.
	rescan   bool
	position string // of the last change notified
}

// run subscribes to the topologies' update channels and serves the
// subscribers until ctx ends; then it closes every subscriber's stream and
// returns nil. Redis being unreachable does not end it: the subscription
// reconnects, and every chart is read again once it has.
func (s *stream) run(ctx context.Context) error {
	st := &state{charts: map[string]*chartState{}, byKey: map[string]string{}, subs: map[*subscriber]bool{},
		dirty: map[string]bool{}, unknown: map[string]map[string]bool{}, rescan: true}
	defer func() {
		for sub := range st.subs {
			s.drop(st, sub)
		}
		close(s.done)
	}()
	var msgs <-chan any
	channels := map[string]string{}
	if s.src != nil && len(s.topologies) > 0 {
		for _, t := range s.topologies {
			channels[s.src.store.Channel(t)] = t
		}
		ps := s.src.rdb.Subscribe(ctx, slices.Sorted(maps.Keys(channels))...)
		defer ps.Close()
		msgs = ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	}
	rescan := time.NewTicker(rescanInterval)
	defer rescan.Stop()
	flush := time.After(0) // the first read of every chart
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok { // closed: only when run returns
				msgs = nil
				continue
			}
			switch m := m.(type) {
			case *redis.Subscription:
				// (Re)subscribed: notifications may have been lost while
				// the connection was down.
				st.rescan = true
			case *redis.Message:
				s.notified(st, channels[m.Channel], m.Payload)
			}
			if flush == nil {
				flush = time.After(flushInterval)
			}
		case <-rescan.C:
			st.rescan = true
			if flush == nil {
				flush = time.After(0)
			}
		case sub := <-s.register:
			st.subs[sub] = true
			s.subscribers.Add(1)
			s.send(st, sub, s.snapshot(st))
		case sub := <-s.unregister:
			s.drop(st, sub)
		case <-flush:
			flush = nil
			if err := s.flush(ctx, st); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if !failing {
					s.log.Warn("dashboard: read the metrics from Redis; retrying", "err", err)
				}
				failing = true
				flush = time.After(time.Second)
			} else if failing {
				s.log.Info("dashboard: reading the metrics from Redis again")
				failing = false
			}
		}
	}
}

// notification is what redismetrics publishes for each change it applies.
type notification struct {
	Row      string            `json:"row"`
	Position string            `json:"position"`
	Deltas   []json.RawMessage `json:"deltas"` // [series key, bucket, delta]
}

// notified marks the charts of the series a notification of topology
// names as dirty.
func (s *stream) notified(st *state, topology, payload string) {
	var n notification
	if err := json.Unmarshal([]byte(payload), &n); err != nil || topology == "" {
		s.log.Debug("dashboard: a notification that is not redismetrics'", "payload", payload)
		st.rescan = true
		return
	}
	st.position = n.Position
	for _, d := range n.Deltas {
		var cell []any
		if json.Unmarshal(d, &cell) != nil || len(cell) == 0 {
			continue
		}
		key, _ := cell[0].(string)
		if id, ok := st.byKey[key]; ok {
			st.dirty[id] = true
		} else if _, ok := s.src.seriesOf(topology, key); ok {
			if st.unknown[topology] == nil {
				st.unknown[topology] = map[string]bool{}
			}
			st.unknown[topology][key] = true
		}
	}
}

// flush reads the dirty charts again (every chart after a rescan) and
// sends the subscribers those that changed. On an error, what is left to
// read stays dirty.
func (s *stream) flush(ctx context.Context, st *state) error {
	if s.src == nil {
		return nil
	}
	if st.rescan {
		for _, t := range s.topologies {
			refs, err := s.src.discover(ctx, t)
			if err != nil {
				return err
			}
			s.add(st, refs)
		}
		for id := range st.charts {
			st.dirty[id] = true
		}
		st.rescan = false
	}
	for t, keys := range st.unknown {
		refs, err := s.src.typed(ctx, t, slices.Sorted(maps.Keys(keys)))
		if err != nil {
			return err
		}
		s.add(st, refs)
		delete(st.unknown, t)
	}
	var changed []Chart
	for _, id := range slices.Sorted(maps.Keys(st.dirty)) {
		cs := st.charts[id]
		chart, kept, err := s.src.chart(ctx, slices.Collect(maps.Values(cs.refs)))
		if err != nil {
			s.send(st, nil, s.frame("charts", st, changed))
			return err
		}
		delete(st.dirty, id)
		for k, r := range cs.refs {
			if !slices.Contains(kept, r) {
				delete(cs.refs, k)
				delete(st.byKey, k)
			}
		}
		if len(kept) == 0 {
			delete(st.charts, id)
			if cs.json != nil {
				changed = append(changed, Chart{ID: id, Topology: cs.chart.Topology, Series: cs.chart.Series, Removed: true, Points: []Point{}})
			}
			continue
		}
		b, err := json.Marshal(chart)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, cs.json) {
			cs.chart, cs.json = chart, b
			changed = append(changed, chart)
		}
	}
	s.send(st, nil, s.frame("charts", st, changed))
	return nil
}

// add puts series into the charts they belong to, marking those dirty.
func (s *stream) add(st *state, refs []seriesRef) {
	for _, r := range refs {
		id := r.chartID()
		if old, ok := st.byKey[r.Key]; ok && old != id { // the key changed type
			delete(st.charts[old].refs, r.Key)
			st.dirty[old] = true
		}
		cs := st.charts[id]
		if cs == nil {
			cs = &chartState{refs: map[string]seriesRef{}}
			st.charts[id] = cs
		}
		cs.refs[r.Key] = r
		st.byKey[r.Key] = id
		st.dirty[id] = true
	}
}

// snapshot is the frame a new subscriber starts from: every chart.
func (s *stream) snapshot(st *state) []byte {
	charts := make([]Chart, 0, len(st.charts))
	for _, cs := range st.charts {
		if cs.json != nil {
			charts = append(charts, cs.chart)
		}
	}
	slices.SortFunc(charts, func(a, b Chart) int { return cmp.Compare(a.ID, b.ID) })
	return s.frame("snapshot", st, charts)
}

// update is the data of a snapshot or charts event.
type update struct {
	Charts []Chart `json:"charts"`
	// Position is the source position of the last change notified.
	Position string `json:"position,omitempty"`
}

// frame encodes an event; nil when there is nothing to send.
func (s *stream) frame(event string, st *state, charts []Chart) []byte {
	if event != "snapshot" && len(charts) == 0 {
		return nil
	}
	b, err := json.Marshal(update{Charts: charts, Position: st.position})
	if err != nil {
		s.log.Error("dashboard: encode charts", "err", err)
		return nil
	}
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, b)
}

// send queues frame for sub, or for every subscriber when sub is nil. A
// subscriber whose queue is full is dropped.
func (s *stream) send(st *state, sub *subscriber, frame []byte) {
	if frame == nil {
		return
	}
	for to := range st.subs {
		if sub != nil && to != sub {
			continue
		}
		select {
		case to.ch <- frame:
		default:
			s.log.Debug("dashboard: a browser fell behind; dropping its stream")
			s.drop(st, to)
		}
	}
}

// drop ends sub's stream, once.
func (s *stream) drop(st *state, sub *subscriber) {
	if st.subs[sub] {
		delete(st.subs, sub)
		close(sub.ch)
		s.subscribers.Add(-1)
	}
}

// ServeHTTP serves the event stream: a snapshot event, then a charts
// event whenever charts change, comment lines while nothing does. It
// returns when the browser goes away, falls behind, or the stream stops.
func (s *stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sub := &subscriber{ch: make(chan []byte, subscriberBuffer)}
	select {
	case s.register <- sub:
	case <-s.done:
		http.Error(w, "the dashboard is stopping", http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		return
	}
	defer func() {
		select {
		case s.unregister <- sub:
		case <-s.done:
		}
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(b []byte) error {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// The browser reconnects 2s after losing the stream.
	if write([]byte("retry: 2000\n\n")) != nil {
		return
	}
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case frame, ok := <-sub.ch:
			if !ok || write(frame) != nil {
				return
			}
		case <-ping.C:
			if write([]byte(": ping\n\n")) != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
