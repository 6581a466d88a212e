package mail_test

import (
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/authgql/server/internal/mail"
)

const link = "https://auth.example.com/verify?token=abc123&next=%2Fhome"

// data returns Data with every field a kind may use.
func data() mail.Data {
	return mail.Data{
		Username: "jane", Link: link, NewEmail: "jane@new.example.org",
		NewEmailMasked: "j***@new.example.org", ExpiresIn: "24 hours",
	}
}

func loadDefaults(t *testing.T) *mail.Templates {
	t.Helper()
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatalf("LoadTemplates: %v", err)
	}
	return tpl
}

func TestRenderEachKind(t *testing.T) {
	tpl := loadDefaults(t)
	tests := []struct {
		kind     mail.Kind
		subject  string
		withLink bool
		contains []string // in both the text and the HTML
	}{
		{mail.KindVerifyEmail, "Confirm your email address", true, []string{"24 hours", "ignore this mail"}},
		{mail.KindResetPassword, "Reset your password", true, []string{"24 hours", "ignore this mail"}},
		{mail.KindConfirmEmailChange, "Confirm your new email address", true, []string{"24 hours", "jane@new.example.org", "ignore this mail"}},
		{mail.KindEmailChangeNotice, "A change of your email address was requested", false, []string{"j***@new.example.org"}},
		{mail.KindAccountDeleted, "Your account was deleted", false, []string{"deleted"}},
		{mail.KindIdentityLinked, "A sign-in method was added to your account", false, []string{"was linked"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			d := data()
			if !tt.withLink {
				d.Link, d.ExpiresIn = "", ""
			}
			m, err := tpl.Render(tt.kind, "jane@example.com", d)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if m.To != "jane@example.com" {
				t.Errorf("To = %q, want jane@example.com", m.To)
			}
			if m.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", m.Subject, tt.subject)
			}
			htmlText := html.UnescapeString(m.HTML)
			for _, want := range append(tt.contains, "jane") {
				if !strings.Contains(m.Text, want) {
					t.Errorf("Text lacks %q:\n%s", want, m.Text)
				}
				if !strings.Contains(htmlText, want) {
					t.Errorf("HTML lacks %q:\n%s", want, m.HTML)
				}
			}
			if got := strings.Contains(m.Text, link); got != tt.withLink {
				t.Errorf("Text has the link: %v, want %v", got, tt.withLink)
			}
			if got := strings.Contains(htmlText, `href="`+link+`"`); got != tt.withLink {
				t.Errorf("HTML links to the link: %v, want %v\n%s", got, tt.withLink, m.HTML)
			}
		})
	}
}

// attrURL finds the attributes through which HTML could load or point anywhere.
var attrURL = regexp.MustCompile(`(?i)\b(src|href|srcset|background|action|poster|data)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)`)

func TestRenderHTMLLoadsNothingRemote(t *testing.T) {
	tpl := loadDefaults(t)
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			m, err := tpl.Render(kind, "jane@example.com", data())
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			for _, a := range attrURL.FindAllStringSubmatch(m.HTML, -1) {
				value := html.UnescapeString(strings.Trim(a[2], `"'`))
				if strings.ToLower(a[1]) != "href" || value != link {
					t.Errorf("%s=%q: only href to the link itself is allowed", a[1], value)
				}
			}
			lower := strings.ToLower(m.HTML)
			for _, banned := range []string{"<img", "<link", "<script", "<style", "<iframe", "<object", "<embed", "url(", "@import"} {
				if strings.Contains(lower, banned) {
					t.Errorf("HTML contains %q", banned)
				}
			}
		})
	}
}

var allKinds = []mail.Kind{
	mail.KindVerifyEmail, mail.KindResetPassword, mail.KindConfirmEmailChange,
	mail.KindEmailChangeNotice, mail.KindAccountDeleted, mail.KindIdentityLinked,
}

func TestRenderHostileData(t *testing.T) {
	tpl := loadDefaults(t)
	d := data()
	d.Username = "<script>alert(1)</script>\r\nBcc: victim@example.com"
	d.NewEmail = `"><img src=x onerror=alert(1)>@example.org`
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			m, err := tpl.Render(kind, "jane@example.com", d)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if strings.Contains(m.HTML, "<script") || strings.Contains(m.HTML, "<img") {
				t.Errorf("HTML carries the markup unescaped:\n%s", m.HTML)
			}
			if !strings.Contains(m.HTML, "&lt;script&gt;") {
				t.Errorf("HTML lacks the escaped user name:\n%s", m.HTML)
			}
			// In text/plain markup is inert; what matters is that no line break
			// lets the value start a line of its own.
			if !strings.Contains(m.Text, "Hello <script>alert(1)</script>  Bcc: victim@example.com,") {
				t.Errorf("Text does not show the user name on one line:\n%s", m.Text)
			}
			if strings.ContainsAny(m.Subject, "\r\n") {
				t.Errorf("Subject = %q, has CR or LF", m.Subject)
			}
		})
	}
}

func TestRenderHostileSubjectOverride(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "verify_email.subject.txt", "Welcome {{.Username}}\n")
	tpl, err := mail.LoadTemplates(dir)
	if err != nil {
		t.Fatalf("LoadTemplates: %v", err)
	}
	d := data()
	d.Username = "jane\r\nBcc: victim@example.com\n"
	m, err := tpl.Render(mail.KindVerifyEmail, "jane@example.com", d)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if want := "Welcome jane Bcc: victim@example.com"; m.Subject != want {
		t.Errorf("Subject = %q, want %q", m.Subject, want)
	}
}

func TestRenderJavaScriptLinkIsDefused(t *testing.T) {
	tpl := loadDefaults(t)
	d := data()
	d.Link = "javascript:alert(1)"
	m, err := tpl.Render(mail.KindResetPassword, "jane@example.com", d)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if strings.Contains(m.HTML, `href="javascript:`) {
		t.Errorf("HTML links to javascript:\n%s", m.HTML)
	}
}

func TestRenderRefuses(t *testing.T) {
	tpl := loadDefaults(t)
	noLink := data()
	noLink.Link = ""
	tests := []struct {
		name string
		kind mail.Kind
		to   string
		d    mail.Data
	}{
		{"unknown kind", "welcome", "jane@example.com", data()},
		{"link kind without a link", mail.KindVerifyEmail, "jane@example.com", noLink},
		{"no recipient", mail.KindAccountDeleted, "", data()},
		{"not an address", mail.KindAccountDeleted, "jane", data()},
		{"two addresses", mail.KindAccountDeleted, "jane@example.com, joe@example.com", data()},
		{"CRLF in the recipient", mail.KindAccountDeleted, "jane@example.com\r\nBcc: victim@example.com", data()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := tpl.Render(tt.kind, tt.to, tt.d); err == nil {
				t.Errorf("Render = %+v, want an error", m)
			}
		})
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadTemplatesOverridesFileByFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "reset_password.html", `<p>Hi {{.Username}}, <a href="{{.Link}}">reset</a></p>`)
	write(t, dir, ".gitkeep", "")
	tpl, err := mail.LoadTemplates(dir)
	if err != nil {
		t.Fatalf("LoadTemplates: %v", err)
	}
	defaults := loadDefaults(t)

	d := data()
	d.Username = "<b>jane</b>"
	got, err := tpl.Render(mail.KindResetPassword, "jane@example.com", d)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	want, err := defaults.Render(mail.KindResetPassword, "jane@example.com", d)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	wantHTML := `<p>Hi &lt;b&gt;jane&lt;/b&gt;, <a href="https://auth.example.com/verify?token=abc123&amp;next=%2Fhome">reset</a></p>`
	if got.HTML != wantHTML {
		t.Errorf("HTML = %q, want %q (the override, still escaped)", got.HTML, wantHTML)
	}
	if got.Subject != want.Subject || got.Text != want.Text {
		t.Errorf("subject or text changed: got %q / %q, want the defaults", got.Subject, got.Text)
	}
	for _, kind := range allKinds {
		if kind == mail.KindResetPassword {
			continue
		}
		got, err1 := tpl.Render(kind, "jane@example.com", data())
		want, err2 := defaults.Render(kind, "jane@example.com", data())
		if err1 != nil || err2 != nil || got != want {
			t.Errorf("%s: differs from the default (errors %v, %v)", kind, err1, err2)
		}
	}
}

func TestLoadTemplatesFails(t *testing.T) {
	tests := []struct {
		name, file, content string
	}{
		{"does not parse", "reset_password.html", "<p>{{.Username</p>"},
		{"unknown field", "verify_email.txt", "Hello {{.Name}}"},
		{"HTML it cannot escape", "account_deleted.html", `<a href="{{.Link}}`},
		{"unknown file name", "verify_emial.txt", "Hello"},
		{"a directory", "verify_email.html", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.name == "a directory" {
				if err := os.Mkdir(filepath.Join(dir, tt.file), 0o700); err != nil {
					t.Fatal(err)
				}
			} else {
				write(t, dir, tt.file, tt.content)
			}
			_, err := mail.LoadTemplates(dir)
			if err == nil {
				t.Fatal("LoadTemplates: no error")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tt.file)) {
				t.Errorf("error %q does not name the file %s", err, tt.file)
			}
		})
	}
}

func TestLoadTemplatesMissingDir(t *testing.T) {
	if _, err := mail.LoadTemplates(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("LoadTemplates of a missing directory: no error")
	}
}
