// Package searchindex writes documents to Elasticsearch with external
// versions derived from change positions ([Version]), or from a read
// model's revisions, so that each change applies at most once and an older
// one never overwrites a newer document.
package searchindex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// The bounds of [Version]: a position fits an Elasticsearch version (a
// non-negative int64) when its commit LSN is at most MaxCommitLSN (128 TiB
// of write-ahead log since the cluster was initialised: LSN 7FFF/FFFFFFFF)
// and its index in the transaction at most MaxIndex.
const (
	indexBits    = 16
	MaxIndex     = 1<<indexBits - 1
	MaxCommitLSN = change.LSN(1<<(63-indexBits) - 1)
)

// ErrVersionRange reports a position [Version] cannot represent.
var ErrVersionRange = errors.New("position out of the range of Elasticsearch versions")

// Version returns the Elasticsearch external version of a change at
// pos: the commit LSN shifted left by 16 bits, or'ed with the change's index
// in its transaction. Versions increase with positions, so a replayed or
// late older change never overwrites a newer document.
//
// Both halves of a Position do not fit in the 63 bits of a version, so the
// commit LSN must be at most [MaxCommitLSN] and the index at most
// [MaxIndex] (65,535 changes in one transaction). Beyond either bound
// Version fails with [ErrVersionRange] instead of wrapping around; the
// processor sends such a change to the dead-letter topic. Snapshot reads have
// index 0.
//
// The position of a change Debezium's own PostgreSQL connector wrote (one
// with Sub, see [change.DebeziumPosition]) gives the change's own LSN as its
// version: the LSNs of one row's changes grow in commit order, since a
// transaction that changes a row waits for the commit of the one that
// changed it before. (The one exception is a transaction that began before
// the connector's snapshot and commits after it: its change to a row the
// snapshot read is older than the read by LSN, and is refused.) A MongoDB
// change's position is beyond the range: index MongoDB collections from a
// read model (topologies.IndexReadModel) instead, whose versions are revisions.
func Version(pos change.Position) (int64, error) {
	if pos.Sub != 0 {
		if pos.Sub > math.MaxInt64 {
			return 0, fmt.Errorf("%w: LSN %s is beyond 2^63", ErrVersionRange, change.LSN(pos.Sub))
		}
		return int64(pos.Sub), nil
	}
	if pos.CommitLSN > MaxCommitLSN {
		return 0, fmt.Errorf("%w: commit LSN %s is beyond %s", ErrVersionRange, pos.CommitLSN, MaxCommitLSN)
	}
	if pos.Index > MaxIndex {
		return 0, fmt.Errorf("%w: change %d of its transaction is beyond the %d changes per transaction a version can tell apart", ErrVersionRange, pos.Index, MaxIndex)
	}
	return int64(pos.CommitLSN)<<indexBits | int64(pos.Index), nil
}

// DeleteRetention is the index.gc_deletes setting of the indices the
// processor creates: how long Elasticsearch remembers the version of a
// deleted document. Within it, an older change replayed after a delete is
// refused; after it, such a change recreates the document until the replay
// reaches the delete again (a replay delivers a row's changes in order, so
// the index ends right; it is wrong only meanwhile). Elasticsearch's default
// is 60s; keeping tombstones costs heap per deleted document.
const DeleteRetention = "24h"

// Writer writes documents to Elasticsearch with external versions derived
// from change positions (see [Version]), so that each change applies at most
// once and never overwrites a newer one. It is safe for concurrent use.
type Writer struct {
	client *elasticsearch.Client

	mu      sync.Mutex
	ensured map[string]bool
}

// New returns a writer writing through client.
func New(client *elasticsearch.Client) *Writer {
	return &Writer{client: client, ensured: map[string]bool{}}
}

// ErrRejected marks an error retrying cannot fix: Elasticsearch refused the
// index, the mapping or the document, or the document cannot be encoded.
// Any other error of a Writer (Elasticsearch unreachable, overloaded) may
// pass.
var ErrRejected = errors.New("rejected by Elasticsearch")

// permanentError is an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() error        { return e.err }
func (e permanentError) Is(target error) bool { return target == ErrRejected }

// Permanent reports whether retrying err cannot help: [ErrRejected] or
// [ErrVersionRange].
func Permanent(err error) bool {
	return errors.Is(err, ErrRejected) || errors.Is(err, ErrVersionRange)
}

// Ensure creates index with mapping (a JSON object, or "" for dynamic
// mapping) and index.gc_deletes = [DeleteRetention] if it does not exist. It
// never changes an existing index.
func (s *Writer) Ensure(ctx context.Context, index, mapping string) error {
	s.mu.Lock()
	done := s.ensured[index]
	s.mu.Unlock()
	if done {
		return nil
	}
	res, err := esapi.IndicesExistsRequest{Index: []string{index}}.Do(ctx, s.client)
	if err != nil {
		return fmt.Errorf("check index %s: %w", index, err)
	}
	drain(res)
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		body := map[string]any{"settings": map[string]any{"index.gc_deletes": DeleteRetention}}
		if mapping != "" {
			body["mappings"] = json.RawMessage(mapping)
		}
		b, err := json.Marshal(body)
		if err != nil {
			return permanentError{fmt.Errorf("create index %s: %w", index, err)}
		}
		res, err := esapi.IndicesCreateRequest{Index: index, Body: bytes.NewReader(b)}.Do(ctx, s.client)
		if err != nil {
			return fmt.Errorf("create index %s: %w", index, err)
		}
		msg := readAll(res)
		if res.IsError() && !strings.Contains(msg, "resource_already_exists_exception") {
			err := fmt.Errorf("create index %s: %s: %s", index, res.Status(), msg)
			if res.StatusCode == http.StatusBadRequest {
				return permanentError{err}
			}
			return err
		}
	default:
		return fmt.Errorf("check index %s: %s", index, res.Status())
	}
	s.mu.Lock()
	s.ensured[index] = true
	s.mu.Unlock()
	return nil
}

// Put writes doc as document id of index at the version of pos. It reports
// false, and changes nothing, when the index already holds that version or a
// newer one of the document (or its delete).
func (s *Writer) Put(ctx context.Context, index, id string, doc any, pos change.Position) (bool, error) {
	version, err := Version(pos)
	if err != nil {
		return false, err
	}
	return s.PutVersion(ctx, index, id, doc, version)
}

// Delete removes document id of index at the version of pos, leaving a
// tombstone with that version (see [DeleteRetention]). It reports false when
// the index already holds that version or a newer one.
func (s *Writer) Delete(ctx context.Context, index, id string, pos change.Position) (bool, error) {
	version, err := Version(pos)
	if err != nil {
		return false, err
	}
	return s.DeleteVersion(ctx, index, id, version)
}

// PutVersion is [Writer.Put] at an external version of the caller's
// (a read model's revision, say).
func (s *Writer) PutVersion(ctx context.Context, index, id string, doc any, version int64) (bool, error) {
	return s.one(ctx, Op{Index: index, ID: id, Doc: doc, Version: version})
}

// DeleteVersion is [Writer.Delete] at an external version of the
// caller's.
func (s *Writer) DeleteVersion(ctx context.Context, index, id string, version int64) (bool, error) {
	return s.one(ctx, Op{Index: index, ID: id, Delete: true, Version: version})
}

// one sends op alone.
func (s *Writer) one(ctx context.Context, op Op) (bool, error) {
	res, err := s.Bulk(ctx, []Op{op})
	if err != nil {
		return false, err
	}
	return res[0].Applied, res[0].Err
}

// Op is one write of [Writer.Bulk]: document ID of Index at the
// external version Version, written as Doc, or deleted when Delete.
type Op struct {
	Index   string
	ID      string
	Doc     any
	Delete  bool
	Version int64
}

// Result is what [Writer.Bulk] did with one Op: Applied is false when the
// index held that version or a newer one already; Err is the op's own
// failure ([Permanent] or not: Elasticsearch overloaded).
type Result struct {
	Applied bool
	Err     error
}

// Bulk sends ops in one bulk request, in order (a document's ops are
// applied in the order given), and returns each op's result. Its error is
// the request's: none of the ops may have been applied.
func (s *Writer) Bulk(ctx context.Context, ops []Op) ([]Result, error) {
	var body bytes.Buffer
	results := make([]Result, len(ops))
	sent := make([]int, 0, len(ops)) // index in ops of each item sent
	for i, op := range ops {
		action := "index"
		if op.Delete {
			action = "delete"
		}
		meta, _ := json.Marshal(map[string]any{action: map[string]any{
			"_index": op.Index, "_id": op.ID, "version": op.Version, "version_type": "external",
		}})
		var doc []byte
		if !op.Delete {
			var err error
			if doc, err = json.Marshal(op.Doc); err != nil {
				results[i].Err = permanentError{fmt.Errorf("encode document %s: %w", op.ID, err)}
				continue
			}
		}
		body.Write(meta)
		body.WriteByte('\n')
		if doc != nil {
			body.Write(doc)
			body.WriteByte('\n')
		}
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return results, nil
	}
	res, err := esapi.BulkRequest{Body: &body}.Do(ctx, s.client)
	if err != nil {
		return nil, fmt.Errorf("write %d documents: %w", len(sent), err)
	}
	raw := readAll(res)
	if res.IsError() {
		err := fmt.Errorf("write %d documents: %s: %s", len(sent), res.Status(), raw)
		if res.StatusCode == http.StatusBadRequest {
			return nil, permanentError{err}
		}
		return nil, err
	}
	var br bulkResponse
	if err := json.Unmarshal([]byte(raw), &br); err != nil || len(br.Items) != len(sent) {
		return nil, fmt.Errorf("write %d documents: unexpected bulk response %q", len(sent), raw)
	}
	for j, i := range sent {
		op := ops[i]
		action := "index"
		if op.Delete {
			action = "delete"
		}
		results[i].Applied, results[i].Err = itemResult(action, op.Index, op.ID, br.Items[j][action])
	}
	return results, nil
}

type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Items  []map[string]bulkItem `json:"items"`
}

// bulkItem is one item of a bulk response.
type bulkItem struct {
	Status int             `json:"status"`
	Result string          `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// itemResult reads one item of a bulk response: whether the write applied,
// or its error.
func itemResult(action, index, id string, item bulkItem) (bool, error) {
	switch {
	case item.Status == http.StatusConflict:
		return false, nil // the index holds this version or a newer one
	case item.Status == http.StatusNotFound && action == "delete":
		return true, nil // nothing to delete; the tombstone keeps the version
	case item.Status >= 200 && item.Status < 300:
		return true, nil
	}
	err := fmt.Errorf("%s document %s in %s: status %d: %s", action, id, index, item.Status, item.Error)
	if item.Status == http.StatusTooManyRequests || item.Status >= 500 {
		return false, err
	}
	return false, permanentError{err}
}

func drain(res *esapi.Response) {
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
}

func readAll(res *esapi.Response) string {
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// DeleteAll applies a truncate at pos to index: it deletes every document
// at the version of pos, so that a document a later change wrote (one
// delivered before the truncate, from another partition) stays, and an
// older change delivered after it is refused while the tombstones last
// ([DeleteRetention]). It returns the number of documents deleted. The
// index is read with a scroll, 500 documents a page, each page deleted in
// one bulk request; a missing index holds nothing to delete.
func (s *Writer) DeleteAll(ctx context.Context, index string, pos change.Position) (int, error) {
	version, err := Version(pos)
	if err != nil {
		return 0, err
	}
	// Documents written a moment ago are searchable after a refresh only.
	res, err := esapi.IndicesRefreshRequest{Index: []string{index}}.Do(ctx, s.client)
	if err != nil {
		return 0, fmt.Errorf("refresh %s: %w", index, err)
	}
	drain(res)
	page, err := s.search(ctx, esapi.SearchRequest{
		Index: []string{index}, Scroll: time.Minute,
		Body: strings.NewReader(`{"size":500,"_source":false,"sort":["_doc"],"query":{"match_all":{}}}`),
	}.Do)
	if err != nil {
		if errors.Is(err, errNoIndex) {
			return 0, nil
		}
		return 0, fmt.Errorf("list documents of %s: %w", index, err)
	}
	defer func() {
		if page.ScrollID != "" {
			if res, err := (esapi.ClearScrollRequest{ScrollID: []string{page.ScrollID}}).Do(context.WithoutCancel(ctx), s.client); err == nil {
				drain(res)
			}
		}
	}()
	deleted := 0
	for len(page.Hits.Hits) > 0 {
		var body bytes.Buffer
		for _, h := range page.Hits.Hits {
			meta, _ := json.Marshal(map[string]any{"delete": map[string]any{
				"_index": index, "_id": h.ID, "version": version, "version_type": "external",
			}})
			body.Write(meta)
			body.WriteByte('\n')
		}
		res, err := esapi.BulkRequest{Body: &body}.Do(ctx, s.client)
		if err != nil {
			return deleted, fmt.Errorf("delete documents of %s: %w", index, err)
		}
		raw := readAll(res)
		if res.IsError() {
			return deleted, fmt.Errorf("delete documents of %s: %s: %s", index, res.Status(), raw)
		}
		var br bulkResponse
		if err := json.Unmarshal([]byte(raw), &br); err != nil {
			return deleted, fmt.Errorf("delete documents of %s: unexpected bulk response %q", index, raw)
		}
		for _, item := range br.Items {
			switch st := item["delete"].Status; {
			case st >= 200 && st < 300:
				deleted++
			case st == http.StatusConflict, st == http.StatusNotFound: // newer, or gone
			default:
				return deleted, fmt.Errorf("delete a document of %s: status %d: %s", index, st, item["delete"].Error)
			}
		}
		id := page.ScrollID
		if page, err = s.search(ctx, esapi.ScrollRequest{ScrollID: id, Scroll: time.Minute}.Do); err != nil {
			return deleted, fmt.Errorf("list documents of %s: %w", index, err)
		}
	}
	return deleted, nil
}

// errNoIndex is a search of an index that does not exist.
var errNoIndex = errors.New("no such index")

type searchPage struct {
	ScrollID string `json:"_scroll_id"`
	Hits     struct {
		Hits []struct {
			ID string `json:"_id"`
		} `json:"hits"`
	} `json:"hits"`
}

// search runs a search or scroll request and decodes its page of hits.
func (s *Writer) search(ctx context.Context, do func(context.Context, esapi.Transport) (*esapi.Response, error)) (searchPage, error) {
	res, err := do(ctx, s.client)
	if err != nil {
		return searchPage{}, err
	}
	raw := readAll(res)
	if res.StatusCode == http.StatusNotFound && strings.Contains(raw, "index_not_found_exception") {
		return searchPage{}, errNoIndex
	}
	if res.IsError() {
		return searchPage{}, fmt.Errorf("%s: %s", res.Status(), raw)
	}
	var page searchPage
	if err := json.Unmarshal([]byte(raw), &page); err != nil {
		return searchPage{}, fmt.Errorf("unexpected search response %q", raw)
	}
	return page, nil
}
