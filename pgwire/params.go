package pgwire

import (
	"sort"
	"strings"
)

// forwardedParams are the session settings a client may give at startup,
// directly or as "-c name=value" in "options", that reach the backend.
// Everything else is left out: "options" can carry "-c role=…" or
// "-c session_authorization=…", a client-set search_path is not the
// session's to choose at login, and drivers send parameters (Redshift's
// client_protocol_version…) that PostgreSQL would refuse. The session can
// still SET what it is allowed to once it is in.
var forwardedParams = map[string]bool{
	"application_name":   true,
	"client_encoding":    true,
	"datestyle":          true,
	"timezone":           true,
	"extra_float_digits": true,
	"intervalstyle":      true,
	// Drivers set these at startup so that a session cannot hang for ever
	// (node-postgres, asyncpg, PGOPTIONS); leaving them out silently would
	// leave sessions without the limit their owner asked for.
	"statement_timeout":                   true,
	"lock_timeout":                        true,
	"idle_in_transaction_session_timeout": true,
}

// forwardedList names forwardedParams for the client's warning.
var forwardedList = func() string {
	names := make([]string, 0, len(forwardedParams))
	for k := range forwardedParams {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}()

// falseParam reports whether a boolean startup parameter says no, as
// PostgreSQL reads one.
func falseParam(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v != "" && (strings.HasPrefix("false", v) || strings.HasPrefix("no", v)) || v == "off" || v == "of" || v == "0"
}

// driverParams are what Redshift's drivers (redshift_connector, the
// Redshift JDBC driver) tell Redshift about themselves and their identity
// provider; PostgreSQL has no such settings, so they are dropped without a
// word.
var driverParams = map[string]bool{
	"client_protocol_version": true,
	"driver_version":          true,
	"os_version":              true,
	"plugin_name":             true,
	"idp_type":                true,
	"provider_name":           true,
	"token_type":              true,
	"identity_namespace":      true,
}

// startupParams sorts a startup message's parameters: the settings to
// open the backend session with, and the names of the ones left out (for
// a warning to the client), "(options)" marking those given in "options".
// user, database and replication are the caller's.
func startupParams(params map[string]string) (forward map[string]string, ignored []string) {
	forward = map[string]string{}
	for k, v := range params {
		name := strings.ToLower(k)
		switch {
		case k == "user" || k == "database" || k == "replication" || k == "options": // exact, as in PostgreSQL
		case forwardedParams[name]:
			forward[k] = v
		case !driverParams[name]:
			ignored = append(ignored, k)
		}
	}
	// A setting given directly wins over the same one in options, as in
	// PostgreSQL.
	for _, kv := range optionSettings(params["options"]) {
		name := strings.ToLower(kv[0])
		if !forwardedParams[name] {
			ignored = append(ignored, kv[0]+" (options)")
			continue
		}
		if !hasParam(forward, name) {
			forward[name] = kv[1]
		}
	}
	sort.Strings(ignored)
	return forward, ignored
}

func hasParam(m map[string]string, lower string) bool {
	for k := range m {
		if strings.ToLower(k) == lower {
			return true
		}
	}
	return false
}

// optionSettings reads "options" as PostgreSQL does: words split at
// unescaped white space (a backslash takes the next character as is), each
// "-c name=value" or "--name=value" one setting, dashes in a long option's
// name read as underscores. Any other switch (-d, -B…) is returned with an
// empty value under its own name, so that it is reported as left out.
func optionSettings(options string) [][2]string {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(options); i++ {
		c := options[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case c == '\\' && i+1 < len(options):
			i++
			c = options[i]
		}
		w.WriteByte(c)
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	var out [][2]string
	for i := 0; i < len(words); i++ {
		word := words[i]
		var setting string
		switch {
		case word == "-c" && i+1 < len(words):
			i++
			setting = words[i]
		case strings.HasPrefix(word, "-c") && len(word) > 2:
			setting = word[2:]
		case strings.HasPrefix(word, "--") && len(word) > 2:
			name, value, _ := strings.Cut(word[2:], "=")
			setting = strings.ReplaceAll(name, "-", "_") + "=" + value
		default:
			out = append(out, [2]string{word, ""})
			continue
		}
		name, value, ok := strings.Cut(setting, "=")
		if !ok || name == "" {
			out = append(out, [2]string{setting, ""})
			continue
		}
		out = append(out, [2]string{name, value})
	}
	return out
}
