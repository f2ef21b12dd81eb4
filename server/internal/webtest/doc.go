// Package webtest holds the tests of the review pages in a real browser:
// Debian's chromium, driven with chromedp against a real server on
// loopback that streams, analyses and serves a synthetic phrase. It has
// no code of its own; see browser_test.go.
package webtest
