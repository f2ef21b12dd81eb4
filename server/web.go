package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// webFiles are the review pages: plain HTML, CSS and JavaScript, served
// as they are, with no build step and nothing fetched from elsewhere.
//
//go:embed web
var webFiles embed.FS

// pageSecurity is the Content-Security-Policy of the pages: everything
// from this server, nothing inline, no framing by other sites.
const pageSecurity = "default-src 'self'; img-src 'self' data:; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// servePage serves one of the pages. Pages hold no data (their scripts
// ask the API, which wants the token), so they are served to anyone.
func (s *Server) servePage(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := webFiles.ReadFile("web/" + name)
		if err != nil {
			http.Error(w, "page "+name+" is not in this build: "+err.Error(), http.StatusInternalServerError)
			return
		}
		setPageHeaders(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(data)
	}
}

func setPageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", pageSecurity)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Cache-Control", "no-cache")
}

// staticHandler serves the pages' scripts and style sheet under /static/.
func staticHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic("server/web is embedded at build time: " + err.Error())
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		files.ServeHTTP(w, r)
	})
}
