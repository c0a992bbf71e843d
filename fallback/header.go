package fallback

// Header is the HTTP header, and the gRPC metadata key, with which a client
// tells the server that a call reached it by fallback, and why: the
// reason's name, "noinstances" or "unavailable". Route receipts report it;
// the edge strips it from untrusted requests.
const Header = "x-graylane-fallback"

// ParseHeader returns the fallback reason that a value of Header names. It
// accepts only the names of the reasons that are fallbacks (see
// Reason.IsFallback), exactly as spelled; anything else reports false.
func ParseHeader(v string) (Reason, bool) {
	for _, r := range FallbackReasons {
		if v == reasonNames[r] {
			return r, true
		}
	}
	return 0, false
}
