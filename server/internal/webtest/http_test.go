package webtest

import (
	"net/http"
	"strings"
	"time"
)

// httpClient is the tests' client for the API: every request ends within
// its timeout.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// newRequest is a request with a JSON body and the token as the header.
func newRequest(method, url, body, token string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}
