package audit

// revocationRecord is the record of a revocation listing everything it
// did in one record, however large (tests that read one record).
func revocationRecord(e *Revocation) *Record {
	lists := revocationLists(e)
	return revocationRecordOf(e, lists[0], lists[1], lists[2])
}
