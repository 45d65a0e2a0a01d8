"""The vocab stage: pre-token counts over the segmented corpus, WordPiece training on the counts."""
