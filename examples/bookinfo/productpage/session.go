package productpage

import (
	"net/http"
	"net/url"
	"strings"
)

// UserCookie is the cookie that holds the name of the logged-in user, in
// plain text, so that a gateway can match on it.
const UserCookie = "user"

// maxUser bounds the length of a user name, in bytes.
const maxUser = 64

// cleanUser keeps of name what a cookie value may hold unquoted (printable
// ASCII but space, '"', ',', ';' and '\'), at most maxUser bytes of it.
func cleanUser(name string) string {
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < maxUser; i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// userOf returns the logged-in user of r, or "".
func userOf(r *http.Request) string {
	c, err := r.Cookie(UserCookie)
	if err != nil {
		return ""
	}
	return cleanUser(c.Value)
}

func setUser(w http.ResponseWriter, name string) {
	c := &http.Cookie{Name: UserCookie, Value: name, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if name == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// login remembers the user named in the form field username (the password
// is ignored) and sends the browser back. A name that is empty once
// cleaned logs the user out.
func login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	setUser(w, cleanUser(r.PostFormValue("username")))
	http.Redirect(w, r, back(r), http.StatusFound)
}

// logout forgets the user and sends the browser back.
func logout(w http.ResponseWriter, r *http.Request) {
	setUser(w, "")
	http.Redirect(w, r, back(r), http.StatusFound)
}

// back returns where to send the browser after login and logout: the path
// and query of the Referer, on this site, or /productpage when there is no
// usable Referer.
func back(r *http.Request) string {
	const home = "/productpage"
	u, err := url.Parse(r.Referer())
	if err != nil {
		return home
	}
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return home
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p
}
