package sts

// Operations are the STS actions Handle answers (metrics label only these).
func Operations() []string { return []string{"AssumeRole", "GetCallerIdentity"} }
