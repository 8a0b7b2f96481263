/**
 * What a pinned container image reference is, for the stack config and the components that
 * take an image: the same rule everywhere, so an image the config accepts is never refused
 * by a component, or the other way round.
 */

/** `name@sha256:<64 lowercase hex digits>`, a tag allowed before the digest. */
export function wellFormedDigest(image: string): boolean {
  return /^[^\s@]+@sha256:[a-f0-9]{64}$/.test(image);
}

/** The tag of `name:tag`, looked for after the last '/' (a registry's port is no tag), at most 128 characters. */
export function imageTag(image: string): string | undefined {
  return /^(?:[^\s@/]+\/)*[^\s@/:]+:([\w][\w.-]{0,127})$/.exec(image)?.[1];
}

/** `latest` and its variants (`latest-jmx`, `latest-full`) move with every release. */
export function mutableTag(tag: string): boolean {
  return tag.startsWith("latest");
}

/** Pinned: by a well-formed digest, or by a tag that is not `latest` or a variant of it. */
export function imagePinned(image: string): boolean {
  if (image.includes("@")) return wellFormedDigest(image);
  const tag = imageTag(image);
  return tag !== undefined && !mutableTag(tag);
}
