package sts

// Operations are the STS actions Handle answers (metrics label only these).
func Operations() []string { return []string{"AssumeRole", "GetCallerIdentity"} }

// Operations are the actions Handle answers (shttp.QueryService).
func (s *Service) Operations() []string { return Operations() }
