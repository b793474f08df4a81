// Package dashboard serves the realtime dashboard of a processor binary: a
// web page that shows what the binary's topologies keep, live, without a
// reload. Package app serves it at /dashboard/ on the binary's HTTP
// address; its scripts and styles are embedded in the binary, so the page
// loads nothing from anywhere else.
//
// # Charts
//
// Every metric series of the topologies' Metrics nodes is a chart. The
// series are listed from Redis, where processors/redismetrics keeps each in
// a hash <prefix>:<topology>:<series> (bucket → value) or, for a ranked
// series, a sorted set: the topologies say which topologies keep metrics,
// Redis which series they have (a SCAN of their key prefix). A hash is
// drawn as columns or a line when its buckets are times or numbers (in
// order: 2026-11-21 before 2026-11-22, minute 9 before minute 10) and as
// bars when they are categories (alphabetically); a sorted set as a
// ranking, highest first. Series named <family>:<period>, such as the
// per-hour series of a per-minute metric (revenue_cents_per_minute:
// 2026-11-21T21, bucket "04"), are merged into one chart of their family
// with buckets <period>:<bucket> (2026-11-21T21:04). A series whose name
// has the word "cents" is shown as amounts.
//
// # Live updates
//
// redismetrics publishes every change it applies on the channel
// <prefix>:<topology>:updates, naming the series and buckets it moved.
// [Dashboard.Run] holds one Redis subscription for the whole binary, to the
// channels of all its topologies; it gathers the series notifications name
// for a moment (200ms), reads the charts they belong to again, and sends
// those that changed, whole, to every browser on the Server-Sent Events
// stream api/events. Sending current values rather than deltas makes every
// event idempotent: a browser that reconnects (its EventSource does so by
// itself) starts again from a snapshot of every chart, and nothing a
// notification lost (Redis pub/sub delivers at most once) stays wrong
// longer than the next read: Run reads every chart again after the
// subscription reconnects, and every 30s, which also removes the series
// that expired. A browser that falls behind or goes away is dropped and its
// handler returns; Run ending closes every stream.
//
// # Pipelines and search
//
// api/status reports each topology's processor: caught up or not
// ([Processor] Ready), how many records each consumer group is behind (Lag)
// and what it did (Stats); the page polls it. When the topologies keep a
// search index (a table's or a read model's), the page searches it through
// api/search: the binary queries Elasticsearch, the browser never does.
package dashboard
