package accountstest

import (
	"net/http"
	"testing"
)

func TestCRMAPI(t *testing.T) {
	const invalidToken = `{"code":"INVALID_TOKEN","details":{},` +
		`"message":"invalid oauth token","status":"error"}` + "\n"
	const org = `{"org":[{"company_name":"Chabad Unity CRM (emulated)",` +
		`"id":"10023122998","primary_email":"user@example.org"}]}` + "\n"
	type testCase struct {
		path   string
		auth   func(at string) string // the Authorization header
		status int
		body   string
	}
	tests := map[string]testCase{
		"org with Zoho-oauthtoken": {
			path:   "/crm/v6/org",
			auth:   func(at string) string { return "Zoho-oauthtoken " + at },
			status: http.StatusOK,
			body:   org,
		},
		"org with Bearer on v2": {
			path:   "/crm/v2/org",
			auth:   func(at string) string { return "Bearer " + at },
			status: http.StatusOK,
			body:   org,
		},
		"current user": {
			path:   "/crm/v2.1/users?type=CurrentUser",
			auth:   func(at string) string { return "Zoho-oauthtoken " + at },
			status: http.StatusOK,
			body: `{"info":{"count":1,"more_records":false,"page":1,` +
				`"per_page":200},"users":[{"confirm":true,` +
				`"email":"user@example.org","full_name":"user",` +
				`"id":"` + userID(DefaultUser) + `",` +
				`"profile":{"name":"Administrator"},"role":{"name":"CEO"},` +
				`"status":"active"}]}` + "\n",
		},
		"no header": {
			path:   "/crm/v6/org",
			auth:   func(string) string { return "" },
			status: http.StatusUnauthorized,
			body:   invalidToken,
		},
		"unknown token": {
			path:   "/crm/v6/org",
			auth:   func(string) string { return "Zoho-oauthtoken 1000.x.y" },
			status: http.StatusUnauthorized,
			body:   invalidToken,
		},
		"unknown scheme": {
			path:   "/crm/v6/org",
			auth:   func(at string) string { return "Basic " + at },
			status: http.StatusUnauthorized,
			body:   invalidToken,
		},
		"unknown path": {
			path:   "/crm/v6/Leads",
			auth:   func(at string) string { return "Zoho-oauthtoken " + at },
			status: http.StatusNotFound,
			body: `{"code":"INVALID_URL_PATTERN","details":{},"message":` +
				`"Please check if the URL trying to access is a correct one",` +
				`"status":"error"}` + "\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			_, at := h.offlineTokens()
			req, err := http.NewRequest(http.MethodGet, h.srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a := tc.auth(at); a != "" {
				req.Header.Set("Authorization", a)
			}

			resp, body := h.do(req)

			if resp.StatusCode != tc.status || body != tc.body {
				t.Errorf("HTTP %d %s\nwant %d %s", resp.StatusCode, body,
					tc.status, tc.body)
			}
			c := h.srv.Counts()
			rejected := 0
			if tc.status == http.StatusUnauthorized {
				rejected = 1
			}
			if c.APICalls != 1 || c.APIRejected != rejected {
				t.Errorf("APICalls %d, APIRejected %d; want 1, %d",
					c.APICalls, c.APIRejected, rejected)
			}
		})
	}
}
