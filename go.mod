module github.com/cdcflow/cdcflow

go 1.26.5

require (
	github.com/linkedin/goavro/v2 v2.15.0
	github.com/twmb/franz-go/pkg/sr v1.8.0
)

require (
	github.com/golang/snappy v1.0.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
)
