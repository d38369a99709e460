package accountstest

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sort"
)

// htmlContentType is the Content-Type of every HTML page.
const htmlContentType = "text/html;charset=UTF-8"

// authErrorMessages explain the error pages of GET auth.
var authErrorMessages = map[string]string{
	errInvalidClient: "The application's client id is not known to this " +
		"accounts server. It may belong to another data center.",
	errInvalidRedirectURI: "The redirect URI does not match any URI " +
		"registered for this client.",
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Code}}<p>Error code: <code>{{.Code}}</code></p>{{end}}
</body>
</html>
`))

// consentPage fills consentTemplate.
type consentPage struct {
	App     string
	Portal  string
	Scopes  []string
	Offline bool
	Action  string
	Hidden  url.Values
	User    string
}

var consentTemplate = template.Must(template.New("consent").Parse(
	`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Authorize {{.App}}</title></head>
<body>
<h1>Chabad Unity CRM (emulated accounts server)</h1>
<p>The application <strong>{{.App}}</strong> would like to access your
account on portal {{.Portal}} with these scopes:</p>
<ul>
{{range .Scopes}}<li><code>{{.}}</code></li>
{{end}}</ul>
{{if .Offline}}<p>It asks for offline access: it may keep working while you
are away.</p>
{{end}}<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">
{{end}}<p><label>Signed in as <input type="email" name="user" value="{{.User}}"></label></p>
<p><button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button></p>
</form>
</body>
</html>
`))

// callbackParam is one query parameter shown by the callback page.
type callbackParam struct {
	Name, Value string
}

// callbackPage fills callbackTemplate.
type callbackPage struct {
	URL    string
	Params []callbackParam
}

var callbackTemplate = template.Must(template.New("callback").Parse(
	`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Authorization callback</title></head>
<body>
<h1>Authorization callback</h1>
<p>Copy this whole URL and paste it where it is asked for:</p>
<p><textarea readonly rows="4" cols="100">{{.URL}}</textarea></p>
{{if .Params}}<table>
{{range .Params}}<tr><th>{{.Name}}</th><td><code>{{.Value}}</code></td></tr>
{{end}}</table>
{{end}}</body>
</html>
`))

// writeHTMLPage answers a page with a title, a message and an optional error
// code.
func writeHTMLPage(w http.ResponseWriter, status int, title, message,
	code string) {
	writeTemplate(w, status, pageTemplate, map[string]string{
		"Title": title, "Message": message, "Code": code,
	})
}

// writeAuthErrorPage answers GET auth's error page for code.
func writeAuthErrorPage(w http.ResponseWriter, code string) {
	writeHTMLPage(w, http.StatusBadRequest, "Invalid request",
		authErrorMessages[code], code)
}

// writeConsentPage answers the consent page.
func writeConsentPage(w http.ResponseWriter, p consentPage) {
	writeTemplate(w, http.StatusOK, consentTemplate, p)
}

// writeCallbackPage answers the callback page for the URL u.
func writeCallbackPage(w http.ResponseWriter, u *url.URL) {
	p := callbackPage{URL: u.String()}
	for name, values := range u.Query() {
		for _, v := range values {
			p.Params = append(p.Params, callbackParam{name, v})
		}
	}
	sort.Slice(p.Params, func(i, j int) bool {
		return p.Params[i].Name < p.Params[j].Name
	})
	writeTemplate(w, http.StatusOK, callbackTemplate, p)
}

// writeTemplate renders t with data and answers it.
func writeTemplate(w http.ResponseWriter, status int, t *template.Template,
	data any) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", htmlContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// writeJSON answers v as JSON, leaving &, < and > unescaped so URLs read
// well.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "json: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
