package views

// SaramaConfig is the Kafka configuration tables use by default.
var SaramaConfig = saramaConfig
