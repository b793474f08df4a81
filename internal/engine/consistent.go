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
		c.Tx = TransactionKey(strconv.FormatInt(ev.Source.TxID, 10))
	} else {
		c.Tx = gatePosPrefix + ev.Position.String() + ":" + topic
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
// numbering of END records in commit order (GateSeqKey), which complete
// transactions wait for earlier ones (GateOrderKey), and its own copy of
// each document (GateDocKey), which it changes only with complete
// transactions, in the order they committed. Each of these values stays
// small however long the backlog: a transaction's own state, a counter,
// the next transaction to release and a bit per complete one after it.
type GateMsg struct {
	// Credit is credit a stage recovered, with the message the model stage
	// applied, if it did (Key names its document).
	Credit *Credit   `json:"credit,omitempty"`
	Key    string    `json:"key,omitempty"`
	Msg    *ModelMsg `json:"msg,omitempty"`
	// End is a transaction's END record: to GateSeqKey with Tx, the
	// transaction it ends; then to the transaction with Seq, its number in
	// commit order.
	End *GateEnd `json:"end,omitempty"`
	Seq int64    `json:"seq,omitempty"`
	// Complete (to GateNumberKey, then to GateOrderKey with Seq) is a
	// transaction whose credit is all back.
	Complete string `json:"complete,omitempty"`
	// Release (to GateNumberKey, then to the transaction) says that every
	// transaction committed before it was published: it is its turn.
	Release bool `json:"release,omitempty"`
	// Tx (to GateSeqKey, with End; to a document, with Msg; to
	// GateCommitKey, with Docs) is a transaction.
	Tx   string `json:"tx,omitempty"`
	Docs int    `json:"docs,omitempty"`
}

// Keys of a gate's table besides the transactions' and the documents'.
const (
	GateSeqKey    = "seq"
	GateOrderKey  = "order"
	GateCommitKey = "commit"
)

// Prefixes of the gate's keys: a source transaction's, a document's, and a
// complete transaction's number's (GateNumberKey).
const (
	GateTxPrefix     = "tx:"
	GateDocPrefix    = "doc:"
	GateNumberPrefix = "seq:"
	gatePosPrefix    = "pos:" // a change outside any transaction
)

// TransactionKey is the gate's key of the source transaction xid: the
// transaction of its changes' credit and of its END record.
func TransactionKey(xid string) string { return GateTxPrefix + xid }

// GateDocKey is the gate's key of the document key.
func GateDocKey(key string) string { return GateDocPrefix + key }

// GateEnd is a transaction's END record: its changes per table
// ("schema.table").
type GateEnd struct {
	Counts map[string]int64 `json:"counts"`
	LSN    change.LSN       `json:"lsn"` // the end of the transaction
}

// GateSeq numbers END records in commit order (they come in it).
type GateSeq struct {
	Next int64 `json:"next"`
	// Last is the LSN of the last END record numbered: one at or before it
	// is an END record read again (the ends group was restarted), whose
	// transaction has its number already.
	Last change.LSN `json:"last,omitempty"`
}

// Number returns the number of the END record end, and false for one read
// again.
func (q *GateSeq) Number(end *GateEnd) (int64, bool) {
	if end.LSN <= q.Last {
		return 0, false
	}
	q.Last = end.LSN
	q.Next++
	return q.Next - 1, true
}

// GateOrder releases complete transactions in commit order: Next is the
// number of the next to release; Done has a bit set for each complete
// transaction after it (bit i: number Next+i), so that it stays a few
// kilobytes however far the completions run ahead of Next. The gate keeps
// the name of a complete transaction under its number (GateNumberKey).
type GateOrder struct {
	Next int64    `json:"next"`
	Done []uint64 `json:"done,omitempty"`
}

// Complete records that the transaction number seq is complete and returns
// the numbers whose turn it now is, in order (none for a number released
// before: a message handled twice).
func (o *GateOrder) Complete(seq int64) []int64 {
	if seq < o.Next {
		return nil
	}
	i := seq - o.Next
	for int64(len(o.Done)) <= i/64 {
		o.Done = append(o.Done, 0)
	}
	o.Done[i/64] |= 1 << (i % 64)
	n := int64(0) // how many complete from Next on
	for n/64 < int64(len(o.Done)) && o.Done[n/64]&(1<<(n%64)) != 0 {
		n++
	}
	if n == 0 {
		return nil
	}
	turn := make([]int64, n)
	for k := range turn {
		turn[k] = o.Next + int64(k)
	}
	o.Next += n
	o.Done = shiftBits(o.Done, n)
	return turn
}

// shiftBits drops the first n bits of bits.
func shiftBits(bits []uint64, n int64) []uint64 {
	words, rem := n/64, uint(n%64)
	bits = bits[words:]
	out := make([]uint64, len(bits))
	for i := range bits {
		out[i] = bits[i] >> rem
		if rem > 0 && i+1 < len(bits) {
			out[i] |= bits[i+1] << (64 - rem)
		}
	}
	for len(out) > 0 && out[len(out)-1] == 0 {
		out = out[:len(out)-1]
	}
	return out
}

// GateNumberKey is the key the name of the complete transaction number seq
// is kept under until its turn.
func GateNumberKey(seq int64) string { return GateNumberPrefix + strconv.FormatInt(seq, 10) }

// GateState is what the gate knows of one transaction still in flight.
type GateState struct {
	// Expected is the credit the transaction's changes started with, known
	// once its END record arrived (Ended).
	Expected uint64 `json:"expected,omitempty"`
	Ended    bool   `json:"ended,omitempty"`
	Seq      int64  `json:"seq,omitempty"` // the END record's number
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
		st.Ended, st.Seq = true, m.Seq
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
		if tx := m.Credit.Tx; strings.HasPrefix(tx, gatePosPrefix) && !st.Ended {
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
