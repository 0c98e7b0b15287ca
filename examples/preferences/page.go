package main

import (
	"html/template"
	"log"
	"net/http"
	"time"

	"github.com/typedsession/session/middleware"
)

// pageData is what the page shows.
type pageData struct {
	Visitor Visitor  // the session as stored
	Form    form     // the preference fields: stored, or a refused submission
	Notices []Notice // the notices the last form left (flash)

	Name      string // a refused sign-in name, echoed
	NameError string // why it was refused
}

func (d pageData) Themes() []choice    { return withRejected(themes, d.Form.Theme) }
func (d pageData) Languages() []choice { return withRejected(languages, d.Form.Language) }

// withRejected returns cs, plus the value v when it is not one of them (a
// refused submission), so that the select shows what was sent.
func withRejected(cs []choice, v string) []choice {
	for _, c := range cs {
		if c.Value == v {
			return cs
		}
	}
	return append(append([]choice(nil), cs...), choice{v, v + " (not available)"})
}

// Greeting is a line in the chosen language.
func (d pageData) Greeting() string {
	switch d.Visitor.Prefs.Language {
	case "de":
		return "Willkommen"
	case "fr":
		return "Bienvenue"
	}
	return "Welcome"
}

func render(w http.ResponseWriter, code int, d pageData) {
	execute(w, code, "page", d)
}

// devicesData is what the devices page shows.
type devicesData struct {
	Visitor Visitor
	Devices []middleware.Device
	Notices []Notice
}

// When formats a time for the devices page.
func (devicesData) When(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

func renderDevices(w http.ResponseWriter, d devicesData) {
	execute(w, http.StatusOK, "devices", d)
}

func execute(w http.ResponseWriter, code int, name string, d any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		log.Printf("preferences: render: %v", err)
	}
}

// pages are the whole site: the preferences page and the devices page.
// The theme is a class on <html> that switches a few CSS variables;
// color-scheme makes the browser's own controls (select, input,
// scrollbars) follow it.
var pages = template.Must(template.New("pages").Parse(`{{define "head"}}<!doctype html>
<html lang="{{.Visitor.Prefs.Language}}" class="theme-{{.Visitor.Prefs.Theme}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preferences</title>
<style>
:root { color-scheme: light; --bg: #f6f7f9; --fg: #1d232b; --muted: #5b6572; --card: #ffffff;
	--line: #d5dae1; --accent: #2463eb; --accent-fg: #ffffff; --bad: #b42318; --bad-bg: #fdecea; --ok: #146c2e; --ok-bg: #e7f6ec; }
:root.theme-dark { color-scheme: dark; --bg: #14171c; --fg: #e6e9ee; --muted: #a0a9b6; --card: #1e232a;
	--line: #38404b; --accent: #7aa7ff; --accent-fg: #0d1117; --bad: #ff8a80; --bad-bg: #3a1d1b; --ok: #7ee2a0; --ok-bg: #17301f; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
	font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 34rem; margin: 2.5rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
.lead { color: var(--muted); margin: 0 0 1.5rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: .6rem; padding: 1.25rem; margin-bottom: 1.25rem; }
h2 { font-size: 1.1rem; margin: 0 0 1rem; }
.field { margin-bottom: 1rem; }
label { display: block; font-weight: 600; margin-bottom: .3rem; }
input, select { width: 100%; font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line);
	border-radius: .4rem; padding: .45rem .6rem; }
input:focus, select:focus, button:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
.invalid input, .invalid select { border-color: var(--bad); }
.msg { margin: .3rem 0 0; font-size: .92rem; color: var(--bad); }
.notice { border-radius: .4rem; padding: .6rem .8rem; margin-bottom: 1rem; }
.notice.bad { background: var(--bad-bg); color: var(--bad); }
.notice.ok { background: var(--ok-bg); color: var(--ok); }
button { font: inherit; font-weight: 600; border: 0; border-radius: .4rem; padding: .5rem 1rem; cursor: pointer;
	background: var(--accent); color: var(--accent-fg); }
button.plain { background: transparent; color: var(--accent); border: 1px solid var(--line); }
.row { display: flex; gap: .75rem; align-items: center; justify-content: space-between; }
.row form { margin: 0; }
.check { display: flex; gap: .5rem; align-items: center; font-weight: normal; }
.check input { width: auto; }
ul.devices { list-style: none; padding: 0; margin: 0 0 1rem; }
ul.devices li { border-top: 1px solid var(--line); padding: .75rem 0; }
ul.devices li:first-child { border-top: 0; }
.agent { color: var(--muted); font-size: .92rem; overflow-wrap: anywhere; }
a { color: var(--accent); }
</style>
</head>
{{end}}
{{define "notices"}}{{range .Notices}}<p class="notice ok" role="status" id="{{.ID}}">{{.Text}}</p>
{{end}}{{end}}

{{define "page"}}{{template "head" .}}
<body>
<main>
<h1 id="greeting">{{.Greeting}}{{with .Visitor.Web.User}}, {{.}}{{end}}</h1>
<p class="lead">Your preferences are kept in a session on the server; the cookie holds only its random token.</p>

<section aria-labelledby="account">
<h2 id="account">Account</h2>
{{if .Visitor.Web.User}}
<div class="row">
<p id="signed-in">Signed in as <strong>{{.Visitor.Web.User}}</strong>.</p>
<form method="post" action="/logout"><button id="logout" class="plain">Sign out</button></form>
</div>
<p><a id="devices" href="/devices">Your devices</a></p>
{{else}}
<form method="post" action="/login">
<div class="field{{if .NameError}} invalid{{end}}">
<label for="name">Name</label>
<input id="name" name="name" value="{{.Name}}" autocomplete="username" maxlength="200"{{if .NameError}} aria-invalid="true" aria-describedby="name-msg"{{end}}>
{{with .NameError}}<p class="msg" id="name-msg">{{.}}</p>{{end}}
</div>
<div class="field"><label class="check" for="remember"><input type="checkbox" id="remember" name="remember"> Remember me on this device for 30 days</label></div>
<button id="login">Sign in</button>
</form>
{{end}}
</section>

<section aria-labelledby="prefs">
<h2 id="prefs">Preferences</h2>
{{if .Form.Errors}}<p class="notice bad" role="alert" id="refused">Nothing was saved: please correct the field{{if gt (len .Form.Errors) 1}}s{{end}} marked below.</p>{{end}}
{{template "notices" .}}
<form method="post" action="/prefs" novalidate>
<div class="field{{with index .Form.Errors "theme"}} invalid{{end}}">
<label for="theme">Theme</label>
<select id="theme" name="theme"{{with index .Form.Errors "theme"}} aria-invalid="true" aria-describedby="theme-msg"{{end}}>
{{range .Themes}}<option value="{{.Value}}"{{if eq .Value $.Form.Theme}} selected{{end}}>{{.Label}}</option>
{{end}}</select>
{{with index .Form.Errors "theme"}}<p class="msg" id="theme-msg">{{.}}</p>{{end}}
</div>
<div class="field{{with index .Form.Errors "language"}} invalid{{end}}">
<label for="language">Language</label>
<select id="language" name="language"{{with index .Form.Errors "language"}} aria-invalid="true" aria-describedby="language-msg"{{end}}>
{{range .Languages}}<option value="{{.Value}}"{{if eq .Value $.Form.Language}} selected{{end}}>{{.Label}}</option>
{{end}}</select>
{{with index .Form.Errors "language"}}<p class="msg" id="language-msg">{{.}}</p>{{end}}
</div>
<div class="field{{with index .Form.Errors "per_page"}} invalid{{end}}">
<label for="per_page">Items per page <span class="lead">(5 to 100)</span></label>
<input id="per_page" name="per_page" inputmode="numeric" value="{{.Form.PerPage}}"{{with index .Form.Errors "per_page"}} aria-invalid="true" aria-describedby="per_page-msg"{{end}}>
{{with index .Form.Errors "per_page"}}<p class="msg" id="per_page-msg">{{.}}</p>{{end}}
</div>
<button id="save">Save</button>
</form>
</section>
</main>
</body>
</html>
{{end}}

{{define "devices"}}{{template "head" .}}
<body>
<main>
<h1>Your devices</h1>
<p class="lead">The browsers signed in as <strong>{{.Visitor.Web.User}}</strong>. Sign out any you do not know. <a href="/">Back to your preferences</a></p>
<section aria-labelledby="list">
<h2 id="list">Signed in</h2>
{{template "notices" .}}
<ul class="devices" id="device-list">
{{range .Devices}}<li class="device"{{if .Current}} id="this-device"{{end}}>
<div class="row">
<div>
<strong>{{if .Current}}This device{{else}}Another device{{end}}</strong>{{if .Remember}} · remembered{{end}}<br>
signed in {{$.When .Created}}, last seen {{$.When .Seen}}
{{with .UserAgent}}<div class="agent">{{.}}</div>{{end}}
</div>
{{if not .Current}}<form method="post" action="/devices/end"><input type="hidden" name="id" value="{{.ID}}"><button class="plain end">Sign out</button></form>{{end}}
</div>
</li>
{{end}}</ul>
<div class="row">
<form method="post" action="/devices/end-others"><button id="end-others">Sign out other devices</button></form>
<form method="post" action="/devices/end-all"><button id="end-all" class="plain">Sign out everywhere</button></form>
</div>
</section>
</main>
</body>
</html>
{{end}}`))
