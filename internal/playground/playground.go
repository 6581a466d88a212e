// Package playground serves the GraphQL Playground (GraphiQL, through gqlgen's
// page) with its scripts and styles embedded in the binary: it works offline,
// behind firewalls and without trusting a CDN.
package playground

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"

	gqlplayground "github.com/99designs/gqlgen/graphql/playground"
)

//go:embed assets/*.js assets/*.css
var assets embed.FS

// AssetPrefix is where the embedded files are served.
const AssetPrefix = "/playground/"

// New returns a handler for the Playground page (at any path it is mounted
// on) and for its assets under AssetPrefix, talking to endpoint.
func New(title, endpoint string) http.Handler {
	files, _ := fs.Sub(assets, "assets")
	url := func(name string) string { return AssetPrefix + name }
	page := gqlplayground.Handler(title, endpoint,
		gqlplayground.WithGraphiqlVersion(url("graphiql.min.js"), url("graphiql.min.css"),
			sri(files, "graphiql.min.js"), sri(files, "graphiql.min.css")),
		gqlplayground.WithGraphiqlReactVersion(url("react.production.min.js"), url("react-dom.production.min.js"),
			sri(files, "react.production.min.js"), sri(files, "react-dom.production.min.js")),
		gqlplayground.WithGraphiqlPluginExplorerVersion(url("plugin-explorer.umd.js"), url("plugin-explorer.css"),
			sri(files, "plugin-explorer.umd.js"), sri(files, "plugin-explorer.css")),
		gqlplayground.WithGraphiqlEnablePluginExplorer(true),
	)
	static := http.StripPrefix(AssetPrefix, http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) > len(AssetPrefix) && r.URL.Path[:len(AssetPrefix)] == AssetPrefix {
			w.Header().Set("Cache-Control", "public, max-age=86400")
			static.ServeHTTP(w, r)
			return
		}
		page.ServeHTTP(w, r)
	})
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
