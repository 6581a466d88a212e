package api_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// setMFA marks an account as having a second factor, as enrolling one does.
func (e *env) setMFA(t *testing.T, username string) {
	t.Helper()
	res, err := e.db.Collection("users").UpdateOne(context.Background(), bson.D{{Key: "username", Value: username}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "mfa_enabled", Value: true}}}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("set mfa_enabled on %s: %v (%d matched)", username, err, res.MatchedCount)
	}
}

// level1Allowed are the @auth fields a level-1 session of an account with a
// second factor may reach (issue 17).
var level1Allowed = map[string]bool{"me": true, "verifyMfa": true, "beginMfaPasskey": true, "logout": true, "sessions": true}

// authFields lists the root fields of schema.graphqls that carry @auth.
func authFields(t *testing.T) (*ast.Schema, []*ast.FieldDefinition, []string) {
	t.Helper()
	src, err := os.ReadFile("../../schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphqls", Input: string(src)})
	if gerr != nil {
		t.Fatal(gerr)
	}
	var fields []*ast.FieldDefinition
	var kinds []string
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation} {
		for _, f := range root.Fields {
			if f.Directives.ForName("auth") != nil || schema.Types[f.Type.Name()].Directives.ForName("auth") != nil {
				fields = append(fields, f)
				kinds = append(kinds, strings.ToLower(root.Name))
			}
		}
	}
	return schema, fields, kinds
}

// sample is a literal of type typ that passes validation.
func sample(schema *ast.Schema, typ *ast.Type) string {
	if typ.Elem != nil {
		return "[" + sample(schema, typ.Elem) + "]"
	}
	def := schema.Types[typ.NamedType]
	switch {
	case def.Kind == ast.Enum:
		return def.EnumValues[0].Name
	case def.Kind == ast.InputObject:
		var parts []string
		for _, f := range def.Fields {
			if f.Type.NonNull {
				parts = append(parts, f.Name+": "+sample(schema, f.Type))
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	switch typ.NamedType {
	case "Int":
		return "1"
	case "Boolean":
		return "true"
	case "JSON":
		return "{}"
	case "ID":
		return `"000000000000000000000000"`
	}
	return `"123456"`
}

// operation calls field with sample arguments, selecting __typename of an
// object result.
func operation(schema *ast.Schema, kind string, f *ast.FieldDefinition) string {
	var args []string
	for _, a := range f.Arguments {
		if a.Type.NonNull {
			args = append(args, a.Name+": "+sample(schema, a.Type))
		}
	}
	call := f.Name
	if len(args) > 0 {
		call += "(" + strings.Join(args, ", ") + ")"
	}
	if def := schema.Types[f.Type.Name()]; def.Kind == ast.Object {
		call += " { __typename }"
	}
	return kind + " { " + call + " }"
}

// A level-1 session of an account with a second factor reaches only the
// allowed fields: every other @auth field of the schema answers FORBIDDEN
// mfa_required, whatever it is (the schema is walked, so a field added
// later is covered too).
func TestLevel1SessionsAreConfined(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "aal_ann", "aal_ann@example.test")
	e.setMFA(t, "aal_ann")
	p := e.loginAs(t, "aal_ann")
	claims := jwtClaims(t, p.AccessToken)
	if claims["aal"] != float64(1) || claims["mfa"] != true || fmt.Sprint(claims["amr"]) != "[pwd]" {
		t.Fatalf("a password login of an account with a second factor: claims aal %v, amr %v, mfa %v; want 1, [pwd], true",
			claims["aal"], claims["amr"], claims["mfa"])
	}
	schema, fields, kinds := authFields(t)
	if len(fields) < 20 {
		t.Fatalf("found %d @auth fields: the walk is broken", len(fields))
	}
	var reached []string
	for i, f := range fields {
		if f.Name == "logout" {
			continue // it would end the session the walk uses; checked below
		}
		res := e.post(t, p.AccessToken, operation(schema, kinds[i], f), nil)
		confined := len(res.Errors) > 0 && res.ext("code") == "FORBIDDEN" && res.ext("reason") == "mfa_required"
		switch {
		case level1Allowed[f.Name] && confined:
			t.Errorf("%s: level 1 must reach it, got mfa_required", f.Name)
		case !level1Allowed[f.Name] && !confined:
			t.Errorf("%s: got %s, want FORBIDDEN mfa_required", f.Name, res.Raw)
		case level1Allowed[f.Name]:
			reached = append(reached, f.Name)
		}
	}
	slices.Sort(reached)
	if want := []string{"beginMfaPasskey", "me", "sessions", "verifyMfa"}; !slices.Equal(reached, want) {
		t.Errorf("reached at level 1: %v, want %v", reached, want)
	}
	// A refresh keeps the level.
	next := payload(t, e.refresh(t, "", p.RefreshToken), "refreshToken")
	if c := jwtClaims(t, next.AccessToken); c["aal"] != float64(1) || c["mfa"] != true {
		t.Fatalf("after a refresh: aal %v, mfa %v; want 1, true", c["aal"], c["mfa"])
	}
	res := e.post(t, next.AccessToken, `{ exportMyData }`, nil)
	if res.ext("reason") != "mfa_required" {
		t.Fatalf("after a refresh: %s", res.Raw)
	}
	if !boolIn(t, e.post(t, next.AccessToken, `mutation { logout }`, nil), "logout") {
		t.Fatal("logout at level 1")
	}
}

// An account without a second factor: a password session is level 1 with
// full access, except fields that demand level 2 (@auth(aal: 2)).
func TestLevel1WithoutFactorHasFullAccessButAAL2Fields(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "aal_bob", "aal_bob@example.test")
	c := jwtClaims(t, p.AccessToken)
	if c["aal"] != float64(1) || c["mfa"] != nil {
		t.Fatalf("claims aal %v, mfa %v; want 1 and no mfa", c["aal"], c["mfa"])
	}
	me(t, e.post(t, p.AccessToken, meQuery, nil))
	if res := e.post(t, p.AccessToken, `{ exportMyData }`, nil); len(res.Errors) > 0 {
		t.Fatalf("exportMyData without a factor: %s", res.Raw)
	}
	for _, q := range []string{`mutation { regenerateRecoveryCodes }`, `mutation { disableTotp(code: "123456") }`,
		`mutation { deletePasskey(id: "x") }`} {
		if res := e.post(t, p.AccessToken, q, nil); res.ext("reason") != "mfa_required" {
			t.Errorf("%s at level 1: %s, want FORBIDDEN mfa_required", q, res.Raw)
		}
	}
}
