package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// searchSize is how many documents a search answers.
const searchSize = 20

// searchTimeout bounds one search in Elasticsearch.
const searchTimeout = 10 * time.Second

// searchHit is a document a search found.
type searchHit struct {
	ID  string          `json:"id"`
	Doc json.RawMessage `json:"doc"`
}

type searchResult struct {
	Index string      `json:"index"`
	Query string      `json:"query"`
	Total int64       `json:"total"`
	Hits  []searchHit `json:"hits"`
}

// search answers GET api/search?index=<index>&q=<query>: the first
// documents of one of the topologies' search indexes that match the query
// (Elasticsearch's simple query string over every field: words, "phrases",
// prefix*, -not, a|b; empty: any document). The browser never talks to
// Elasticsearch: only the indexes of the topologies are searched, and only
// with this query.
func (d *Dashboard) search(w http.ResponseWriter, r *http.Request) {
	index, q := r.URL.Query().Get("index"), strings.TrimSpace(r.URL.Query().Get("q"))
	if index == "" && len(d.indexes) == 1 {
		index = d.indexes[0]
	}
	if !slices.Contains(d.indexes, index) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no search index %q; the topologies keep %v", index, d.indexes))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), searchTimeout)
	defer cancel()
	res, err := d.searchIndex(ctx, index, q)
	if err != nil {
		status := http.StatusBadGateway
		var bad badQuery
		if errors.As(err, &bad) {
			status = http.StatusBadRequest
		}
		writeError(w, status, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// badQuery is Elasticsearch refusing a query.
type badQuery struct{ error }

func (d *Dashboard) searchIndex(ctx context.Context, index, q string) (searchResult, error) {
	query := map[string]any{"match_all": map[string]any{}}
	if q != "" {
		// lenient: a word is not an error for a numeric or date field.
		query = map[string]any{"simple_query_string": map[string]any{"query": q, "lenient": true, "default_operator": "and"}}
	}
	body, err := json.Marshal(map[string]any{"query": query, "size": searchSize, "track_total_hits": true})
	if err != nil {
		return searchResult{}, err
	}
	res, err := esapi.SearchRequest{Index: []string{index}, Body: bytes.NewReader(body)}.Do(ctx, d.cfg.Elasticsearch)
	if err != nil {
		return searchResult{}, fmt.Errorf("search %s in Elasticsearch: %w", index, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return searchResult{}, fmt.Errorf("search %s in Elasticsearch: %w", index, err)
	}
	if res.IsError() {
		err := fmt.Errorf("search %s in Elasticsearch: %s: %s", index, res.Status(), raw)
		if res.StatusCode == http.StatusBadRequest {
			return searchResult{}, badQuery{err}
		}
		return searchResult{}, err
	}
	var found struct {
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []struct {
				ID     string          `json:"_id"`
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(raw, &found); err != nil {
		return searchResult{}, fmt.Errorf("search %s in Elasticsearch: read the answer: %w", index, err)
	}
	out := searchResult{Index: index, Query: q, Total: found.Hits.Total.Value, Hits: []searchHit{}}
	for _, h := range found.Hits.Hits {
		out.Hits = append(out.Hits, searchHit{ID: h.ID, Doc: h.Source})
	}
	return out, nil
}
