"""``python -m lyra.tokenizer.train``: train the video tokenizer (see :mod:`lyra.tokenizer.training`)."""

import sys

from lyra.tokenizer.training import main

if __name__ == "__main__":
    sys.exit(main())
