package main

import (
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevelopmentMailFile registers a user on the real server without
// SMTP_URL: the verification mail becomes an .eml file under DATA_DIR/mail,
// its link is logged at info level, and the link verifies the address.
func TestDevelopmentMailFile(t *testing.T) {
	dataDir := t.TempDir()
	base, out, stop := start(t, map[string]string{"APP_ENV": "development", "PORT": "0", "HOST": "127.0.0.1",
		"DATA_DIR": dataDir, "BCRYPT_COST": "10"})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})

	reg := gql(t, base, "", `mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }`,
		map[string]any{"i": map[string]any{"username": "maya", "email": "maya@example.com", "password": fixturePassword}})
	tok := field(t, reg, "register", "accessToken")

	// The worker writes the file, then logs the link.
	logged := regexp.MustCompile(`(?m)^.*msg="mail: written \(no SMTP_URL\); open the link to continue".*$`)
	var files []string
	var line string
	deadline := time.Now().Add(5 * time.Second)
	for {
		files, _ = filepath.Glob(filepath.Join(dataDir, "mail", "*.eml"))
		line = logged.FindString(out.String())
		if len(files) > 0 && line != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: mail files %v, link logged %q; log:\n%s", files, line, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(files) != 1 {
		t.Fatalf("mail files = %v, want one", files)
	}
	m := regexp.MustCompile(`link="?([^"\s]+)`).FindStringSubmatch(line)
	if m == nil || !strings.Contains(line, "level=INFO") || !strings.Contains(line, "kind=verify_email") {
		t.Fatalf("link log line = %q, want the verify_email link at INFO", line)
	}
	link := m[1]
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, "http://localhost:3000/") || u.Query().Get("token") == "" {
		t.Fatalf("logged link %q: want APP_URL's development default with a token", link)
	}

	// The file is the message SMTP would carry: its text part holds the link.
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mail file mode = %v, want 0600 (it holds a live link)", fi.Mode().Perm())
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatalf("mail file is not a message: %v", err)
	}
	if to := msg.Header.Get("To"); !strings.Contains(to, "maya@example.com") {
		t.Errorf("To = %q, want maya@example.com", to)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", msg.Header.Get("Content-Type"))
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // undoes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("mail file: %v", err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("mail file: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[pt] = string(body)
	}
	if !strings.Contains(parts["text/plain"], link) || !strings.Contains(parts["text/html"], u.Query().Get("token")) {
		t.Errorf("mail file parts %v do not carry the logged link %s", parts, link)
	}

	res := gql(t, base, tok, `mutation($t: String!) { verifyEmail(token: $t) { emailVerified } }`,
		map[string]any{"t": u.Query().Get("token")})
	data, _ := res["data"].(map[string]any)
	user, _ := data["verifyEmail"].(map[string]any)
	if res["errors"] != nil || user["emailVerified"] != true {
		t.Errorf("verifyEmail with the mailed link = %v, want emailVerified true", res)
	}
}
