package masking

// scratch holds a Sample's working memory, so a reused Sample masks with no
// allocation.
type scratch struct{}
