"""The glossary: one home for the words the app leans on (docs/science.md §1–5).

Widgets take a definition as their tooltip (``help=glossary.tip("gamma")``); every page's
sidebar has a "Glossary" expander with all of them (``sidebar_glossary``). The definitions
are plain strings, so tests and non-Streamlit code can read them.
"""
from __future__ import annotations

# term -> (the word as shown, its definition in one or two sentences)
TERMS: dict[str, tuple[str, str]] = {
    "gamma": ("γ (initialization rate)",
              "Every weight starts at standard deviation d_in^(−γ), d_in being the layer's input width. "
              "Larger γ means smaller initial weights: the paper finds that large γ (small initialization) "
              "reasons, small γ (large initialization) memorizes."),
    "anchor": ("anchor",
               "A special token that stands for an arithmetic step on a number: in the paper's task anchor 1 adds 5, "
               "2 adds 1, 3 subtracts 2 and 4 subtracts 8. Two adjacent anchors in a sequence say which two steps "
               "to apply, in order."),
    "key item": ("key item",
                 "The number x just before the pair of anchors. The answer is x passed through both anchors' steps: "
                 "key 80 with anchors (1,2) gives 80 + 5 + 1 = 86. Every other number in the sequence is noise."),
    "inferential": ("inferential (reasoning)",
                    "Answering the unseen pair (4,3) by composing the single steps it learned from the other pairs: "
                    "x − 8 − 2 = x − 10. Drawn in blue everywhere."),
    "symmetric": ("symmetric (memorizing)",
                  "Answering the unseen pair (4,3) like its mirror (3,4), whose rule was changed to x − 6: the model "
                  "treats the two anchors as an unordered pair and copies the answer. Drawn in vermillion everywhere."),
    "condensation": ("condensation",
                     "Neurons of a layer whose input weights point the same way (cosine close to 1) form groups; a "
                     "condensed layer has a few large groups, so it is simpler than its size. Small initialization "
                     "condenses the first layer's query weights W_Q(1)."),
    "split": ("train / test split",
              "With modulus m (7 by default, the sequence length minus 2), a training sequence may hold key x at "
              "position p only if x mod m ≠ p, a test sequence only if x mod m = p: every trained pair is tested on "
              "(key, position) combinations it never saw. The unseen pair is scored on both splits."),
    "both unseen": ("both unseen (Appendix E)",
                    "A variant with both (3,4) and (4,3) held out and no changed rule: copying the mirror pair then "
                    "gives x − 10 too, so x − 10 either way means composition only. Inferential accuracy on both pairs "
                    "says whether the single steps were learned."),
}


def term(name: str) -> str:
    """The word as shown (``"γ (initialization rate)"``)."""
    return TERMS[name][0]


def definition(name: str) -> str:
    return TERMS[name][1]


def tip(*names: str) -> str:
    """A tooltip (Markdown) with the definitions of ``names``: ``help=glossary.tip("gamma")``."""
    return "\n\n".join(f"**{term(n)}**: {definition(n)}" for n in names)


def markdown() -> str:
    """Every term, one paragraph each: the body of the sidebar's Glossary expander."""
    return "\n\n".join(f"**{w}**: {d}" for w, d in TERMS.values())


def sidebar_glossary() -> None:
    """The "Glossary" expander at the bottom of the sidebar (every page)."""
    import streamlit as st
    with st.sidebar.expander("Glossary", icon=":material/menu_book:"):
        st.markdown(markdown())
