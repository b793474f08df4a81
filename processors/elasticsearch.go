package processors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/cdcflow/cdcflow/change"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// The bounds of [SearchVersion]: a position fits an Elasticsearch version
// (a non-negative int64) when its commit LSN is at most MaxSearchCommitLSN
// (128 TiB of write-ahead log since the cluster was initialised: LSN
// 7FFF/FFFFFFFF) and its index in the transaction at most MaxSearchIndex.
const (
	searchIndexBits    = 16
	MaxSearchIndex     = 1<<searchIndexBits - 1
	MaxSearchCommitLSN = change.LSN(1<<(63-searchIndexBits) - 1)
)

// ErrVersionRange reports a position [SearchVersion] cannot represent.
var ErrVersionRange = errors.New("position out of the range of Elasticsearch versions")

// SearchVersion returns the Elasticsearch external version of a change at
// pos: the commit LSN shifted left by 16 bits, or'ed with the change's index
// in its transaction. Versions increase with positions, so a replayed or
// late older change never overwrites a newer document.
//
// Both halves of a Position do not fit in the 63 bits of a version, so the
// commit LSN must be at most [MaxSearchCommitLSN] and the index at most
// [MaxSearchIndex] (65,535 changes in one transaction). Beyond either bound
// SearchVersion fails with [ErrVersionRange] instead of wrapping around; the
// processor sends such a change to the dead-letter topic. Snapshot reads have
// index 0.
func SearchVersion(pos change.Position) (int64, error) {
	if pos.CommitLSN > MaxSearchCommitLSN {
		return 0, fmt.Errorf("%w: commit LSN %s is beyond %s", ErrVersionRange, pos.CommitLSN, MaxSearchCommitLSN)
	}
	if pos.Index > MaxSearchIndex {
		return 0, fmt.Errorf("%w: change %d of its transaction is beyond the %d changes per transaction a version can tell apart", ErrVersionRange, pos.Index, MaxSearchIndex)
	}
	return int64(pos.CommitLSN)<<searchIndexBits | int64(pos.Index), nil
}

// DeleteRetention is the index.gc_deletes setting of the indices the
// processor creates: how long Elasticsearch remembers the version of a
// deleted document. Within it, an older change replayed after a delete is
// refused; after it, such a change recreates the document until the replay
// reaches the delete again (a replay delivers a row's changes in order, so
// the index ends right; it is wrong only meanwhile). Elasticsearch's default
// is 60s; keeping tombstones costs heap per deleted document.
const DeleteRetention = "24h"

// SearchIndex writes documents to Elasticsearch with external versions
// derived from change positions (see [SearchVersion]), so that each change
// applies at most once and never overwrites a newer one. It is safe for
// concurrent use.
type SearchIndex struct {
	client *elasticsearch.Client

	mu      sync.Mutex
	ensured map[string]bool
}

// NewSearchIndex returns a sink writing through client.
func NewSearchIndex(client *elasticsearch.Client) *SearchIndex {
	return &SearchIndex{client: client, ensured: map[string]bool{}}
}

// permanentError is an error that retrying cannot fix: the change goes to
// the dead-letter topic at once.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, ErrVersionRange)
}

// Ensure creates index with mapping (a JSON object, or "" for dynamic
// mapping) and index.gc_deletes = [DeleteRetention] if it does not exist. It
// never changes an existing index.
func (s *SearchIndex) Ensure(ctx context.Context, index, mapping string) error {
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
func (s *SearchIndex) Put(ctx context.Context, index, id string, doc any, pos change.Position) (bool, error) {
	version, err := SearchVersion(pos)
	if err != nil {
		return false, err
	}
	return s.PutVersion(ctx, index, id, doc, version)
}

// Delete removes document id of index at the version of pos, leaving a
// tombstone with that version (see [DeleteRetention]). It reports false when
// the index already holds that version or a newer one.
func (s *SearchIndex) Delete(ctx context.Context, index, id string, pos change.Position) (bool, error) {
	version, err := SearchVersion(pos)
	if err != nil {
		return false, err
	}
	return s.DeleteVersion(ctx, index, id, version)
}

// PutVersion is [SearchIndex.Put] at an external version of the caller's
// (a read model's revision, say).
func (s *SearchIndex) PutVersion(ctx context.Context, index, id string, doc any, version int64) (bool, error) {
	body, err := json.Marshal(doc)
	if err != nil {
		return false, permanentError{fmt.Errorf("encode document %s: %w", id, err)}
	}
	return s.bulk(ctx, "index", index, id, body, version)
}

// DeleteVersion is [SearchIndex.Delete] at an external version of the
// caller's.
func (s *SearchIndex) DeleteVersion(ctx context.Context, index, id string, version int64) (bool, error) {
	return s.bulk(ctx, "delete", index, id, nil, version)
}

type bulkResponse struct {
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		Status int             `json:"status"`
		Result string          `json:"result"`
		Error  json.RawMessage `json:"error"`
	} `json:"items"`
}

func (s *SearchIndex) bulk(ctx context.Context, action, index, id string, doc []byte, version int64) (bool, error) {
	meta, _ := json.Marshal(map[string]any{action: map[string]any{
		"_index": index, "_id": id, "version": version, "version_type": "external",
	}})
	var body bytes.Buffer
	body.Write(meta)
	body.WriteByte('\n')
	if doc != nil {
		body.Write(doc)
		body.WriteByte('\n')
	}
	res, err := esapi.BulkRequest{Body: &body}.Do(ctx, s.client)
	if err != nil {
		return false, fmt.Errorf("%s document %s in %s: %w", action, id, index, err)
	}
	raw := readAll(res)
	if res.IsError() {
		err := fmt.Errorf("%s document %s in %s: %s: %s", action, id, index, res.Status(), raw)
		if res.StatusCode == http.StatusBadRequest {
			return false, permanentError{err}
		}
		return false, err
	}
	var br bulkResponse
	if err := json.Unmarshal([]byte(raw), &br); err != nil || len(br.Items) != 1 {
		return false, fmt.Errorf("%s document %s in %s: unexpected bulk response %q", action, id, index, raw)
	}
	item := br.Items[0][action]
	switch {
	case item.Status == http.StatusConflict:
		return false, nil // the index holds this version or a newer one
	case item.Status == http.StatusNotFound && action == "delete":
		return true, nil // nothing to delete; the tombstone keeps the version
	case item.Status >= 200 && item.Status < 300:
		return true, nil
	}
	err = fmt.Errorf("%s document %s in %s: status %d: %s", action, id, index, item.Status, item.Error)
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
