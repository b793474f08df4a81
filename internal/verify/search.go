package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

var errNoIndex = errors.New("no such index")

// searchDocuments returns every document of index by id, as their sources,
// once the index is refreshed (so that the latest writes are searchable);
// errNoIndex when the index does not exist.
func searchDocuments(ctx context.Context, es *elasticsearch.Client, index string) (map[string]json.RawMessage, error) {
	if es == nil {
		return nil, errors.New("no Elasticsearch client for search index " + index)
	}
	res, err := esapi.IndicesRefreshRequest{Index: []string{index}}.Do(ctx, es)
	if err != nil {
		return nil, fmt.Errorf("refresh search index %s: %w", index, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return nil, errNoIndex
	}
	size := 1000
	res, err = esapi.SearchRequest{Index: []string{index}, Scroll: time.Minute, Size: &size, Sort: []string{"_doc"}}.Do(ctx, es)
	docs := map[string]json.RawMessage{}
	for {
		if err != nil {
			return nil, fmt.Errorf("read search index %s: %w", index, err)
		}
		var page struct {
			ScrollID string `json:"_scroll_id"`
			Hits     struct {
				Hits []struct {
					ID     string          `json:"_id"`
					Source json.RawMessage `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		body, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr != nil {
			return nil, fmt.Errorf("read search index %s: %w", index, rerr)
		}
		if res.IsError() {
			return nil, fmt.Errorf("read search index %s: Elasticsearch answered %s: %s", index, res.Status(), bytes.TrimSpace(body))
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("read search index %s: %w", index, err)
		}
		for _, h := range page.Hits.Hits {
			docs[h.ID] = h.Source
		}
		if len(page.Hits.Hits) == 0 || page.ScrollID == "" {
			if page.ScrollID != "" {
				if res, err := (esapi.ClearScrollRequest{ScrollID: []string{page.ScrollID}}).Do(context.WithoutCancel(ctx), es); err == nil {
					res.Body.Close()
				}
			}
			return docs, nil
		}
		res, err = esapi.ScrollRequest{ScrollID: page.ScrollID, Scroll: time.Minute}.Do(ctx, es)
	}
}
