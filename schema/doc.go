// Package schema validates request bodies against a route's JSON Schema
// (docs/modes.md): the schema is compiled once, when the config is loaded, and
// every request of the route is checked against it before anything is
// sent or stored. A body that does not match is refused with 422 and the
// list of failing places in the body, as JSON pointers.
//
// Schemas are JSON Schema 2020-12 by default (a schema may name another
// draft with "$schema"), compiled by github.com/santhosh-tekuri/jsonschema.
// "format" is asserted, not just annotated: a route that declares
// "format": "email" means it. A schema may $ref other local files; remote
// references are refused, so loading a config never reaches the network
// and never reads more than a bounded amount of a regular file.
package schema
