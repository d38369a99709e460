package accountstest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// The whole flow against an emulator: approve, exchange, call the CRM API.
func Example() {
	srv := accountstest.NewServer(accountstest.Options{})
	defer srv.Close()
	srv.AddClient(accountstest.Client{
		ID:           "1000.EXAMPLE",
		Secret:       "example-secret",
		RedirectURIs: []string{srv.URL + "/callback"},
	})
	prefix := srv.URL + "/clientoauth/v2/" + accountstest.DefaultPortal

	// A person signs in and approves the request.
	callback, err := srv.Approve(prefix+"/auth?"+url.Values{
		"client_id":     {"1000.EXAMPLE"},
		"response_type": {"code"},
		"redirect_uri":  {srv.URL + "/callback"},
		"scope":         {"ZohoCRM.org.ALL"},
		"access_type":   {"offline"},
		"prompt":        {"consent"},
	}.Encode(), "")
	if err != nil {
		panic(err)
	}
	cb, _ := url.Parse(callback)

	// The application exchanges the code.
	resp, err := http.PostForm(prefix+"/token", url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {cb.Query().Get("code")},
		"client_id":     {"1000.EXAMPLE"},
		"client_secret": {"example-secret"},
		"redirect_uri":  {srv.URL + "/callback"},
	})
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	fmt.Println("refresh token:", srv.IsLive(tok.RefreshToken))
	fmt.Println("expires in:", tok.ExpiresIn)

	// The access token works at the CRM API.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/crm/v6/org", nil)
	req.Header.Set("Authorization", "Zoho-oauthtoken "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("CRM API:", resp.Status)
	// Output:
	// refresh token: true
	// expires in: 3600
	// CRM API: 200 OK
}
