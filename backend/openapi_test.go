package backend

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestOpenAPI_EveryPathAndFieldDocumented(t *testing.T) {
	e := getTestBackend(t)
	for _, p := range e.b.Paths {
		if p.HelpSynopsis == "" || p.HelpDescription == "" {
			t.Errorf("%s: no help", p.Pattern)
		}
		if p.DisplayAttrs == nil || p.DisplayAttrs.OperationPrefix != operationPrefix {
			t.Errorf("%s: no operation prefix", p.Pattern)
		}
		for name, f := range p.Fields {
			if f.Description == "" {
				t.Errorf("%s: field %s has no description", p.Pattern, name)
			}
			if f.DisplayAttrs == nil || f.DisplayAttrs.Name == "" {
				t.Errorf("%s: field %s has no display name", p.Pattern, name)
			}
		}
	}
}

func TestOpenAPI_SensitiveFieldsMarked(t *testing.T) {
	e := getTestBackend(t)
	sensitive := map[string]bool{
		"client_secret": true, "code": true, "state": true,
		"callback_url": true, "refresh_token": true,
	}
	for _, p := range e.b.Paths {
		for name, f := range p.Fields {
			if sensitive[name] && (f.DisplayAttrs == nil || !f.DisplayAttrs.Sensitive) {
				t.Errorf("%s: field %s is not marked sensitive", p.Pattern, name)
			}
		}
	}
}

func TestOpenAPI_DocumentListsEveryPath(t *testing.T) {
	e := getTestBackend(t)
	resp, err := e.b.HandleRequest(t.Context(), &logical.Request{
		Operation: logical.HelpOperation, Storage: e.storage,
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(resp.Data["openapi"])
	if err != nil {
		t.Fatal(err)
	}
	var doc framework.OASDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/config", "/auth-code-url", "/creds/", "/creds/{name}",
		"/creds/{name}/status", "/self/", "/self/{name}", "/self/{name}/status"} {
		item, ok := doc.Paths[p]
		if !ok {
			t.Errorf("OpenAPI has no %s", p)
			continue
		}
		ops := []*framework.OASOperation{item.Get, item.Post, item.Delete}
		for _, op := range ops {
			if op != nil && !strings.HasPrefix(op.OperationID, "unity-crm-") {
				t.Errorf("%s: operation id %q", p, op.OperationID)
			}
		}
	}
}
