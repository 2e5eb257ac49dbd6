module example.com/gateway

go 1.21

require llmd.dev/llmd v0.0.0

// The llmd Go package lives in this repository (bindings/go) and no public
// module proxy serves it: point the module path at a checkout. From your own
// module use the path of your checkout, e.g. /opt/llmd/bindings/go.
replace llmd.dev/llmd => ../../bindings/go
