"""Texts of the DCC model: a text in several languages (``dcc:textType``)."""

from __future__ import annotations

from pydantic import Field

from metrology.dcc.model.fields import FrozenModel, Lang, Str


class LocalizedText(FrozenModel):
    """One ``dcc:content``: a text and its language (none for a language-neutral text such as
    a company name)."""

    lang: Lang | None = None
    text: Str


class Text(FrozenModel):
    """A DCC text in one or more languages (``dcc:textType``)."""

    content: tuple[LocalizedText, ...] = Field(..., min_length=1)

    @classmethod
    def of(cls, neutral: str | None = None, /, **by_lang: str) -> Text:
        """``Text.of(en="Zener reference", vi="Chuẩn điện áp Zener")`` or ``Text.of("PTB")``."""
        content = [LocalizedText(text=neutral)] if neutral is not None else []
        content += [LocalizedText(lang=lang, text=text) for lang, text in by_lang.items()]
        return cls(content=tuple(content))

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages present (a language-neutral content has none)."""
        return tuple(c.lang for c in self.content if c.lang)

    def get(self, lang: str = "en") -> str:
        """The text in ``lang``, else the language-neutral one, else the English one, else the
        first."""
        for wanted in (lang, None, "en"):
            for content in self.content:
                if content.lang == wanted:
                    return content.text
        return self.content[0].text

    def __str__(self) -> str:
        return self.get("en")
