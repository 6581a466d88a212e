package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"os"
	"path/filepath"
	"slices"
	"strings"
	texttemplate "text/template"
	"unicode"
)

// defaults holds the built-in templates: for each kind, <kind>.subject.txt and
// <kind>.txt (text/template) and <kind>.html (html/template, a whole document
// with inline styles only).
//
//go:embed templates
var defaults embed.FS

// Templates renders mails from templates: the embedded defaults, or a directory
// (MAIL_TEMPLATES_DIR) that overrides them file by file.
type Templates struct {
	kinds map[Kind]kindTemplates
}

type kindTemplates struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
}

// templateFiles returns the file names a template directory may hold.
func templateFiles() []string {
	var names []string
	for _, k := range kinds {
		names = append(names, string(k)+".subject.txt", string(k)+".txt", string(k)+".html")
	}
	return names
}

// LoadTemplates parses every template at start: the embedded defaults, each
// replaced by the file of the same name in dir if there is one (dir "" = embedded
// only). It fails, naming the file, on a template that does not parse or cannot
// render (an unknown field, say), and on a file in dir whose name it does not know,
// so that a typo cannot silently leave a default in place. Files whose names start
// with a dot (editor swap files, .gitkeep) are ignored.
func LoadTemplates(dir string) (*Templates, error) {
	files := make(map[string]templateFile)
	for _, name := range templateFiles() {
		src, err := defaults.ReadFile("templates/" + name)
		if err != nil {
			return nil, fmt.Errorf("mail: embedded template %s: %w", name, err)
		}
		files[name] = templateFile{path: "embedded " + name, src: string(src)}
	}
	if dir != "" {
		if err := readOverrides(dir, files); err != nil {
			return nil, err
		}
	}

	t := &Templates{kinds: make(map[Kind]kindTemplates, len(kinds))}
	for _, k := range kinds {
		var kt kindTemplates
		var err error
		subject, text, html := files[string(k)+".subject.txt"], files[string(k)+".txt"], files[string(k)+".html"]
		if kt.subject, err = texttemplate.New(subject.path).Parse(subject.src); err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", subject.path, err)
		}
		if kt.text, err = texttemplate.New(text.path).Parse(text.src); err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", text.path, err)
		}
		if kt.html, err = htmltemplate.New(html.path).Parse(html.src); err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", html.path, err)
		}
		// A field that does not exist, or (html/template) an action in a context it
		// cannot escape, only shows when the template runs: run each once now.
		for _, f := range []struct {
			path string
			run  func() error
		}{
			{subject.path, func() error { return kt.subject.Execute(&bytes.Buffer{}, sample) }},
			{text.path, func() error { return kt.text.Execute(&bytes.Buffer{}, sample) }},
			{html.path, func() error { return kt.html.Execute(&bytes.Buffer{}, sample) }},
		} {
			if err := f.run(); err != nil {
				return nil, fmt.Errorf("mail: template %s: %w", f.path, err)
			}
		}
		t.kinds[k] = kt
	}
	return t, nil
}

// sample is the Data LoadTemplates renders every template with once.
var sample = Data{
	Username: "jane", Link: "https://example.com/link?token=t", NewEmail: "jane@example.org",
	NewEmailMasked: "j***@example.org", ExpiresIn: "1 hour", Provider: "Example",
}

type templateFile struct {
	path string // for errors: the file in the override directory, or "embedded <name>"
	src  string
}

func readOverrides(dir string, files map[string]templateFile) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("mail: templates directory: %w", err)
	}
	known := templateFiles()
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		if !slices.Contains(known, name) || e.IsDir() {
			return fmt.Errorf("mail: template %s: unknown file name (known: %s)", path, strings.Join(known, ", "))
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("mail: template %s: %w", path, err)
		}
		files[name] = templateFile{path: path, src: string(src)}
	}
	return nil
}

// Render renders the mail of this kind for the address to. Control characters
// (CR and LF among them) in d become spaces, and the subject is folded to one
// line, so no value can add a header or forge lines in the text.
func (t *Templates) Render(kind Kind, to string, d Data) (Message, error) {
	kt, ok := t.kinds[kind]
	if !ok {
		return Message{}, fmt.Errorf("mail: unknown kind %q", kind)
	}
	if _, err := parseRecipient(to); err != nil {
		return Message{}, err
	}
	if kind.hasLink() && d.Link == "" {
		return Message{}, fmt.Errorf("mail: a %s mail needs a link", kind)
	}
	d = Data{
		Username: clean(d.Username), Link: clean(d.Link), NewEmail: clean(d.NewEmail),
		NewEmailMasked: clean(d.NewEmailMasked), ExpiresIn: clean(d.ExpiresIn), Provider: clean(d.Provider),
	}
	var subject, text, html bytes.Buffer
	err := errors.Join(kt.subject.Execute(&subject, d), kt.text.Execute(&text, d), kt.html.Execute(&html, d))
	if err != nil {
		return Message{}, fmt.Errorf("mail: render %s: %w", kind, err)
	}
	return Message{To: to, Subject: oneLine(subject.String()), Text: text.String(), HTML: html.String()}, nil
}

// clean replaces control characters with spaces.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// oneLine folds s to a single line of single spaces: a header value can hold no
// CR or LF.
func oneLine(s string) string {
	return strings.Join(strings.Fields(clean(s)), " ")
}
