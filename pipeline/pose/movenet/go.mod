// The pose estimator is a Node program. This file only marks the directory
// as another module, so that the go command (go vet ./..., go test ./...)
// keeps out of its node_modules, where some npm packages ship .go files.
module github.com/referee-project/referee/pipeline/pose/movenet

go 1.25
