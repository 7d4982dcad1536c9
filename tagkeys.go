package shiftkey

// RequestTagKeys adds to keys (nil: a new map) the request-tag condition
// keys of a call, as the AWS Service Authorization Reference lists them:
// aws:RequestTag/<key> for each tag it sets, and aws:TagKeys for the keys
// it sets and the ones it names (a removal). With neither, keys is
// returned as it is.
func RequestTagKeys(keys map[string][]string, tags []Tag, names ...string) map[string][]string {
	if len(tags) == 0 && len(names) == 0 {
		return keys
	}
	if keys == nil {
		keys = map[string][]string{}
	}
	for _, t := range tags {
		keys["aws:RequestTag/"+t.Key] = []string{t.Value}
		keys["aws:TagKeys"] = append(keys["aws:TagKeys"], t.Key)
	}
	keys["aws:TagKeys"] = append(keys["aws:TagKeys"], names...)
	return keys
}

// ResourceTagKeys adds to keys (nil: a new map) aws:ResourceTag/<key> for
// each tag of the resource acted on, and the same under each other prefix
// given (IAM users and roles also answer to iam:ResourceTag/).
func ResourceTagKeys(keys map[string][]string, tags []Tag, prefixes ...string) map[string][]string {
	if len(tags) == 0 {
		return keys
	}
	if keys == nil {
		keys = map[string][]string{}
	}
	for _, t := range tags {
		keys["aws:ResourceTag/"+t.Key] = []string{t.Value}
		for _, p := range prefixes {
			keys[p+t.Key] = []string{t.Value}
		}
	}
	return keys
}
