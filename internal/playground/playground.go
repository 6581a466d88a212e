// Package playground serves the GraphQL Playground (GraphiQL) with its scripts
// and styles embedded in the binary: it works offline, behind firewalls and
// without trusting a CDN. It opens on a document for this API and signs in
// like an app (assets/authgql.js; see docs/playground.md).
package playground

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets/*.js assets/*.css
var assets embed.FS

// DefaultDocument is what the query editor holds when GraphiQL has no stored
// tabs: the five operations of signing in and the live security events,
// named, with a word on tokens.
//
//go:embed document.graphql
var DefaultDocument string

// DefaultVariables fill the variables pane next to DefaultDocument.
const DefaultVariables = `{
  "username": "alice",
  "email": "alice@example.com",
  "password": "playground-alice-1"
}`

// AssetPrefix is where the embedded files are served.
const AssetPrefix = "/playground/"

// Scripts and Styles are the embedded files the page loads, in order.
var (
	Scripts = []string{"react.production.min.js", "react-dom.production.min.js", "graphiql.min.js",
		"plugin-explorer.umd.js", "graphql-ws.min.js", "authgql.js"}
	Styles = []string{"graphiql.min.css", "plugin-explorer.css", "authgql.css"}
)

// page is GraphiQL with our fetcher; everything it runs comes from AssetPrefix
// with Subresource Integrity, and its settings travel as inert JSON.
var page = template.Must(template.New("playground").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
{{- range .Styles}}
<link rel="stylesheet" href="{{.URL}}" integrity="{{.SRI}}" crossorigin="anonymous">
{{- end}}
</head>
<body>
<div id="graphiql"><div class="authgql-loading">Loading…</div></div>
<script id="authgql-playground" type="application/json">{{.Config}}</script>
{{- range .Scripts}}
<script src="{{.URL}}" integrity="{{.SRI}}" crossorigin="anonymous"></script>
{{- end}}
</body>
</html>
`))

type asset struct {
	URL string
	SRI string
}

// config is what authgql.js reads from the page.
type config struct {
	Title     string `json:"title"`
	Endpoint  string `json:"endpoint"`
	Query     string `json:"query"`
	Variables string `json:"variables"`
}

// New returns a handler for the Playground page (at any path it is mounted
// on) and for its assets under AssetPrefix, talking to endpoint.
func New(title, endpoint string) http.Handler {
	files, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("playground: " + err.Error()) // a build defect, caught by tests
	}
	list := func(names []string) []asset {
		out := make([]asset, len(names))
		for i, name := range names {
			sum := sri(files, name)
			// The digest in the URL: a cached copy of an older build's file would
			// fail the integrity check and break the page.
			out[i] = asset{URL: AssetPrefix + name + "?v=" + version(sum), SRI: sum}
		}
		return out
	}
	data := struct {
		Title           string
		Styles, Scripts []asset
		Config          config
	}{title, list(Styles), list(Scripts), config{title, endpoint, DefaultDocument, DefaultVariables}}
	var html strings.Builder
	if err := page.Execute(&html, data); err != nil {
		panic("playground: " + err.Error())
	}
	body := html.String()

	static := http.StripPrefix(AssetPrefix, http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, AssetPrefix) && len(r.URL.Path) > len(AssetPrefix) {
			w.Header().Set("Cache-Control", "public, max-age=86400")
			static.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(body))
	})
}

// version is a short, URL-safe tag of an SRI value.
func version(sri string) string {
	v := strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(strings.TrimPrefix(sri, "sha256-"))
	return v[:12]
}

// sri is the Subresource Integrity value of an embedded file, so the page
// checks what it loads even from us.
func sri(files fs.FS, name string) string {
	b, err := fs.ReadFile(files, name)
	if err != nil {
		panic("playground: missing embedded asset " + name) // a build defect, caught by tests
	}
	sum := sha256.Sum256(b)
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}
