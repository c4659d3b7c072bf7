package router

// Explanation is a Decision with the reasoning behind it, for people: every
// candidate considered, in the order considered, and why it did or did not
// match. It serialises to JSON.
type Explanation struct {
	// Host and Path are what matching saw: the host lower-cased without port
	// and the normalised path.
	Host string `json:"host"`
	Path string `json:"path"`
	// Steps are the gateway routes, then the router routes, tried in order;
	// the last matched one (of each kind) is the one chosen.
	Steps []Step `json:"steps"`
	// Notes are facts about groups of candidates, e.g. a hostname group
	// without a match that routing fell through.
	Notes    []string `json:"notes,omitempty"`
	Decision Decision `json:"decision"`
}

// Step is one candidate route and the result of each of its criteria.
type Step struct {
	// Kind is "gatewayRoute" or "route" (a virtual router's route).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Group is the candidate group: "hostname api.example.com",
	// "hostname suffix .example.com", "any hostname" or "virtual router NAME".
	Group    string  `json:"group"`
	Priority int     `json:"priority"`
	Matched  bool    `json:"matched"`
	Checks   []Check `json:"checks"`
}

// Check is one criterion, what the request had for it, and whether it held.
type Check struct {
	Criterion string `json:"criterion"` // e.g. "header x-canary-user exact \"true\""
	Value     string `json:"value"`     // e.g. "absent", "\"false\"", "/backend/items"
	Matched   bool   `json:"matched"`
}

// Explain routes one request as Decide does and says why.
func (t *Table) Explain(r *Request) Explanation {
	var ex Explanation
	ex.Decision = t.decide(r, &ex)
	if ex.Steps == nil {
		ex.Steps = []Step{}
	}
	return ex
}

func (ex *Explanation) note(s string) { ex.Notes = append(ex.Notes, s) }
