// Package fanout holds the domain of Fanout: the messages it accepts, the
// deliveries of each message to each target, the attempts made for a
// delivery, and the Store interface that the durable queue, the data plane
// and the admin API share.
//
// Everything outside the domain lives in its own package: config parses and
// validates the YAML file, gateway is the HTTP data plane, upstream sends
// requests to targets, queue owns group commit and the delivery workers,
// sqlite and postgres implement Store, admin is the control-plane API, and
// server wires them into one running process for cmd/fanout.
package fanout
