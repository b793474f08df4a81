package capture

import (
	"sync"

	"github.com/cdcflow/cdcflow/change"
)

// acks tracks which transactions Kafka has acknowledged in full, so that
// capture confirms to PostgreSQL only the end of the last transaction before
// which every record was acknowledged. Records of a transaction are produced
// as it streams; its acknowledgements come back on franz-go's goroutines.
type acks struct {
	mu        sync.Mutex
	queue     []*txAcks // transactions in commit order, oldest first
	confirmed change.LSN
	err       error // the first produce error
}

type txAcks struct {
	pending   int        // records produced and not yet acknowledged
	committed bool       // the Commit message was seen
	end       change.LSN // the transaction's end LSN, known at commit
}

func newAcks(start change.LSN) *acks { return &acks{confirmed: start} }

// begin starts tracking a new transaction and returns its handle.
func (a *acks) begin() *txAcks {
	a.mu.Lock()
	defer a.mu.Unlock()
	tx := &txAcks{}
	a.queue = append(a.queue, tx)
	return tx
}

// produced records that one more record of tx is in flight.
func (a *acks) produced(tx *txAcks) {
	a.mu.Lock()
	tx.pending++
	a.mu.Unlock()
}

// acked records the acknowledgement (or failure) of one record of tx.
func (a *acks) acked(tx *txAcks, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil && a.err == nil {
		a.err = err
	}
	tx.pending--
	a.advance()
}

// commit records that tx ended at end.
func (a *acks) commit(tx *txAcks, end change.LSN) {
	a.mu.Lock()
	defer a.mu.Unlock()
	tx.committed, tx.end = true, end
	a.advance()
}

func (a *acks) advance() {
	if a.err != nil {
		return // never confirm past a failed record
	}
	for len(a.queue) > 0 && a.queue[0].committed && a.queue[0].pending == 0 {
		if a.queue[0].end > a.confirmed {
			a.confirmed = a.queue[0].end
		}
		a.queue = a.queue[1:]
	}
}

// state returns the confirmed LSN and the first produce error.
func (a *acks) state() (change.LSN, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.confirmed, a.err
}
