package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cdcflow/cdcflow/change"
)

// A transaction-consistent read model (ReadModel.Consistent) publishes a
// source transaction's documents only once every change of the transaction
// has gone through all of the read model's stages, so that its readers
// never see half a transaction.
//
// Knowing when a transaction is through is credit recovery (Mattern's
// termination detection by weights): each change a stage reads from a
// change topic starts with CreditUnit units of credit; a message carries
// its credit, a stage that sends messages on splits the credit of the one it
// handles among them, and one that ends a message's path (the model stage
// applying it, a stage that sends nothing on) reports the credit to the
// read model's gate. The transaction topic's END record says how many
// changes of each table the transaction holds, so the gate knows the credit
// the transaction's changes started with; when it has recovered all of it,
// nothing of the transaction is left in flight. The gate then waits for the
// transactions committed before it (the END records come in commit order),
// applies the messages the model stage applied to its own copy of the
// documents, and publishes the documents the transaction changed, together,
// to the consistent topic. It keeps its own copy because the model stage's
// documents may already hold changes of later transactions still in flight.

// CreditUnit is the credit one change starts with at one stage reading it:
// a message split among k others gives each 1/k of its own, so a change's
// credit runs out after splits whose fan-outs multiply to 2^40.
const CreditUnit uint64 = 1 << 40

// Credit is the share of the credit of a change's reading a read model
// message carries.
type Credit struct {
	// Tx names the source transaction: "tx:<xid>", or for a change outside
	// any transaction (a snapshot read), "pos:<position>:<topic>".
	Tx    string `json:"tx"`
	Units uint64 `json:"units"`
	// ID names the message's path from the change, so that the gate counts
	// a message handled twice (a redelivery) once.
	ID string `json:"id"`
}

// EntryCredit is the credit of ev read from topic by a stage of a
// consistent read model; stage tells the stages reading the same topic
// apart.
func EntryCredit(stage, topic string, ev *change.Event) *Credit {
	c := &Credit{Units: CreditUnit, ID: stage + "@" + topic + "@" + ev.Position.String()}
	if ev.Transaction != nil && ev.Source.TxID != 0 {
		c.Tx = "tx:" + strconv.FormatInt(ev.Source.TxID, 10)
	} else {
		c.Tx = "pos:" + ev.Position.String() + ":" + topic
	}
	return c
}

// Split divides c among k messages sent on (k > 0), the first getting
// what does not divide evenly.
func (c *Credit) Split(k int) []*Credit {
	out := make([]*Credit, k)
	share := c.Units / uint64(k)
	for i := range out {
		out[i] = &Credit{Tx: c.Tx, Units: share, ID: c.ID + "/" + strconv.Itoa(i)}
	}
	out[0].Units += c.Units - share*uint64(k)
	return out
}

// GateMsg is a message of a consistent read model's gate. Its table keeps,
// under keys of their own, each transaction in flight (its Credit.Tx), the
// order transactions committed in (GateOrderKey), and its own copy of each
// document (GateDocKey), which it changes only with complete transactions,
// in the order they committed.
type GateMsg struct {
	// Credit is credit a stage recovered, with the message the model stage
	// applied, if it did (Key names its document).
	Credit *Credit   `json:"credit,omitempty"`
	Key    string    `json:"key,omitempty"`
	Msg    *ModelMsg `json:"msg,omitempty"`
	End    *GateEnd  `json:"end,omitempty"`
	// Enqueue (to GateOrderKey) is the transaction an END record ended,
	// in commit order; Complete, one whose credit is all back.
	Enqueue  string     `json:"enqueue,omitempty"`
	Complete string     `json:"complete,omitempty"`
	EndLSN   change.LSN `json:"end_lsn,omitempty"` // with Enqueue: the END record's LSN
	// Release (to a transaction) says that every transaction committed
	// before it was published: it is its turn.
	Release bool `json:"release,omitempty"`
	// Tx (to a document, with Msg; to GateCommitKey, with Docs) is the
	// transaction being published.
	Tx   string `json:"tx,omitempty"`
	Docs int    `json:"docs,omitempty"`
}

// Keys of a gate's table besides the transactions'.
const (
	GateOrderKey  = "order"
	GateCommitKey = "commit"
)

// GateDocKey is the gate's key of the document key.
func GateDocKey(key string) string { return "doc:" + key }

// GateEnd is a transaction's END record: its changes per table
// ("schema.table").
type GateEnd struct {
	Counts map[string]int64 `json:"counts"`
	LSN    change.LSN       `json:"lsn"` // the end of the transaction
}

// GateOrder is the order transactions committed in, of those not yet
// published, and which of them are complete.
type GateOrder struct {
	Queue    []string        `json:"queue,omitempty"`
	Complete map[string]bool `json:"complete,omitempty"`
	// Last is the LSN of the last END record enqueued: one at or before it
	// is an END record read again (the ends group was restarted), whose
	// transaction is in the queue or was published.
	Last change.LSN `json:"last,omitempty"`
}

// Next records m (an Enqueue or a Complete) and returns the transactions
// whose turn it now is, in order.
func (o *GateOrder) Next(m GateMsg) []string {
	if m.Enqueue != "" && m.EndLSN > o.Last {
		o.Queue = append(o.Queue, m.Enqueue)
		o.Last = m.EndLSN
	}
	if m.Complete != "" {
		if o.Complete == nil {
			o.Complete = map[string]bool{}
		}
		o.Complete[m.Complete] = true
	}
	var turn []string
	for len(o.Queue) > 0 && o.Complete[o.Queue[0]] {
		turn = append(turn, o.Queue[0])
		delete(o.Complete, o.Queue[0])
		o.Queue = o.Queue[1:]
	}
	return turn
}

// GateState is what the gate knows of one transaction still in flight.
type GateState struct {
	// Expected is the credit the transaction's changes started with, known
	// once its END record arrived (Ended).
	Expected uint64 `json:"expected,omitempty"`
	Ended    bool   `json:"ended,omitempty"`
	Units    uint64 `json:"units"`
	// Complete: all of the credit is back; the transaction waits for its
	// turn.
	Complete bool `json:"complete,omitempty"`
	// Seen are the paths whose credit the gate counted.
	Seen map[string]bool `json:"seen,omitempty"`
	// Msgs are the messages the model stage applied, by document.
	Msgs []GateApply `json:"msgs,omitempty"`
}

// GateApply is a message the model stage applied to the document Key.
type GateApply struct {
	Key string   `json:"key"`
	Msg ModelMsg `json:"msg"`
}

// Sorted returns the messages in the order of their positions.
func (st *GateState) Sorted() []GateApply {
	out := slices.Clone(st.Msgs)
	slices.SortStableFunc(out, func(a, b GateApply) int { return a.Msg.Position.Compare(b.Msg.Position) })
	return out
}

// Documents returns how many documents the transaction changed.
func (st *GateState) Documents() int {
	keys := map[string]bool{}
	for _, m := range st.Msgs {
		keys[m.Key] = true
	}
	return len(keys)
}

// TopicPrefix is the topic prefix of the read model's change topics
// (<prefix>.<schema>.<table>): the gate of a consistent read model reads
// the prefix's transaction topic.
func (n *ReadModel) TopicPrefix() (string, error) {
	parts := strings.Split(n.Root.Topic, ".")
	if len(parts) < 3 {
		return "", fmt.Errorf("read model %s is transaction-consistent, and its root topic %s is not <prefix>.<schema>.<table>: the gate cannot find the transaction topic", n.Name, n.Root.Topic)
	}
	return strings.Join(parts[:len(parts)-2], "."), nil
}

// Readers returns, by table ("schema.table" of a topic <prefix>.<schema>.<table>),
// how many stages of the read model read each change of the table: the model
// stage reads the root table, the join stage every table it joins, and the
// root table too when the root references other tables.
func (n *ReadModel) Readers(prefix string) map[string]int {
	readers := map[string]int{}
	for i, topic := range n.Inputs() {
		table := strings.TrimPrefix(topic, prefix+".")
		readers[table]++
		if i == 0 && n.HasReferences() {
			readers[table]++
		}
	}
	return readers
}

// Gate applies m, a credit or END record, to the state st of its
// transaction (nil: none yet) and returns the next state, and whether the
// transaction just completed: all of its credit is back, and next holds
// the messages to apply to the documents when its turn comes. readers
// is [ReadModel.Readers]. A credit the gate counted before, or a second END
// record, changes nothing.
func Gate(st *GateState, m GateMsg, readers map[string]int) (next *GateState, complete bool, err error) {
	if st == nil {
		st = &GateState{}
	}
	switch {
	case m.End != nil:
		if st.Ended {
			return st, false, nil
		}
		st.Ended = true
		for table, count := range m.End.Counts {
			st.Expected += uint64(count) * uint64(readers[table]) * CreditUnit
		}
	case m.Credit != nil:
		if st.Seen[m.Credit.ID] {
			return st, false, nil
		}
		if st.Seen == nil {
			st.Seen = map[string]bool{}
		}
		st.Seen[m.Credit.ID] = true
		st.Units += m.Credit.Units
		if tx := m.Credit.Tx; strings.HasPrefix(tx, "pos:") && !st.Ended {
			// A change outside any transaction is its own: the stages that
			// read its table hold all of its credit.
			topic := tx[strings.LastIndex(tx, ":")+1:]
			n := 0
			for table, r := range readers {
				if strings.HasSuffix(topic, "."+table) {
					n = r
				}
			}
			st.Ended, st.Expected = true, uint64(n)*CreditUnit
		}
		if m.Msg != nil {
			msg := *m.Msg
			msg.Credit = nil
			st.Msgs = append(st.Msgs, GateApply{Key: m.Key, Msg: msg})
		}
	default:
		return st, false, fmt.Errorf("a gate message with neither credit nor END record")
	}
	// More credit than expected comes back only when a redelivered message
	// took another path than the first time (its stage's state had changed
	// meanwhile): the transaction is through all the same.
	if !st.Complete && st.Ended && st.Units >= st.Expected {
		st.Complete = true
		return st, true, nil
	}
	return st, false, nil
}

// Published is a record of a consistent topic: a document of a published
// transaction (State, a ModelState, keyed by its root key), or the commit
// marker after the transaction's documents (keyed CommitKey; Docs
// documents went before it).
type Published struct {
	Tx      string          `json:"tx"`
	Version change.Position `json:"version"`
	State   json.RawMessage `json:"state,omitempty"`
	Docs    int             `json:"docs,omitempty"`
}
