"""Solutions to the notebooks' exercises, kept apart from the notebooks (instructors: see notebooks/README.md).

The test suite runs each through ``cmi_toolkit.course.exercises.check``; ``WRONG`` holds a typical mistake per exercise,
which the checks must reject.
"""

import math

import torch
import torch.nn.functional as F


def plugin_cmi(probs, labels, num_classes):
    g = torch.stack([probs[labels == c].mean(0) for c in range(num_classes)])
    return (probs * (probs.log() - g[labels].log())).sum(-1).mean()


def cmi_loss(logits, features, labels, centroids, lam, T):
    q = torch.softmax(features / T, -1)
    kl = (q * (q.log() - centroids[labels].log())).sum(-1).mean()
    return F.cross_entropy(logits, labels) + lam * kl


def separation(probs, labels, num_classes):
    pi = torch.bincount(labels, minlength=num_classes).double() / len(labels)
    g = torch.stack([probs[labels == c].mean(0) for c in range(num_classes)])
    cross = -(probs @ g.log().T)  # N x C: H(p_i, g_c)
    w = pi[None, :] / (1 - pi[labels])[:, None]
    w[torch.arange(len(labels)), labels] = 0
    return (w * cross).sum(-1).mean()


def ema_update(centroids, probs, labels, m):
    out = centroids.clone()
    for c in labels.unique():
        out[c] = m * centroids[c] + (1 - m) * probs[labels == c].mean(0)
    return out


def kd_loss(student_logits, teacher_logits, labels, alpha, T):
    pt = torch.softmax(teacher_logits / T, -1)
    kl = (pt * (pt.log() - torch.log_softmax(student_logits / T, -1))).sum(-1).mean()
    return alpha * T * T * kl + (1 - alpha) * F.cross_entropy(student_logits, labels)


def infonce_bound(scores):
    return math.log(scores.shape[0]) + (scores.diagonal() - torch.logsumexp(scores, 1)).mean()


def paired_interval(method, baseline):
    from scipy.stats import t

    d = torch.tensor(method, dtype=torch.float64) - torch.tensor(baseline, dtype=torch.float64)
    n = len(d)
    half = t.ppf(0.975, n - 1) * d.std(unbiased=True) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def cmi_from_entropies(probs, labels, num_classes):
    def entropy(q):
        return -torch.xlogy(q, q).sum(-1)

    g = torch.stack([probs[labels == c].mean(0) for c in range(num_classes)])
    return entropy(g[labels]).mean() - entropy(probs).mean()


def batch_fpdc(features, labels, num_classes, T):
    q = torch.softmax(features / T, -1)
    return torch.stack([q[labels == c].mean(0) for c in range(num_classes)])


def ncmi(probs, labels, num_classes):
    return plugin_cmi(probs, labels, num_classes) / separation(probs, labels, num_classes)


def kl_per_example(probs, labels, num_classes):
    g = torch.stack([probs[labels == c].mean(0) for c in range(num_classes)])
    return (probs * (probs.log() - g[labels].log())).sum(-1)


def mcmi_teacher_loss(logits, labels, centroids, lam, T):
    q = torch.softmax(logits / T, -1)
    kl = (q * (q.log() - centroids[labels].log())).sum(-1).mean()
    return F.cross_entropy(logits, labels) - lam * kl


def max_pooled_probs(logits, mask):
    probs = torch.softmax(logits, -1) * mask[..., None]
    return probs.max(dim=1).values


def holm(pvalues):
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out, running = [0.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        out[i] = running
    return out


WRONG = {
    "plugin_cmi": lambda probs, labels, c: (probs * (probs.log() - probs.mean(0).log())).sum(-1).mean(),  # ignores Y
    "cmi_loss": lambda logits, h, y, g, lam, T: F.cross_entropy(logits, y) + lam * (
        g[y] * (g[y].log() - torch.log_softmax(h / T, -1))).sum(-1).mean(),  # KL the wrong way round
    "separation": lambda p, y, c: -(p * torch.stack([p[y == k].mean(0) for k in range(c)])[y].log()).sum(-1).mean(),
    "ema_update": lambda g, p, y, m: m * g + (1 - m) * p.mean(0),  # moves every class, with the whole batch's mean
    "kd_loss": lambda zs, zt, y, a, T: a * F.kl_div(torch.log_softmax(zs / T, -1), torch.softmax(zt / T, -1),
                                                     reduction="batchmean") + (1 - a) * F.cross_entropy(zs, y),  # no T^2
    "infonce_bound": lambda s: (s.diagonal() - torch.logsumexp(s, 1)).mean(),  # forgot log B
    "cmi_from_entropies": lambda p, y, c: -torch.xlogy(p.mean(0), p.mean(0)).sum() + torch.xlogy(p, p).sum(-1).mean(),
    "batch_fpdc": lambda h, y, c, T: torch.stack([torch.softmax(h[y == k].mean(0) / T, -1) for k in range(c)]),
    "ncmi": lambda p, y, c: separation(p, y, c) / plugin_cmi(p, y, c),
    "kl_per_example": lambda p, y, c: (p * (p.log() - p.mean(0).log())).sum(-1),  # one centroid for every row
    "mcmi_teacher_loss": lambda z, y, g, lam, T: F.cross_entropy(z, y) + lam * (
        torch.softmax(z / T, -1) * (torch.log_softmax(z / T, -1) - g[y].log())).sum(-1).mean(),  # minimises CMI
    "max_pooled_probs": lambda z, m: torch.softmax(z, -1).mean(1),  # mean over all positions, padding included
    "holm": lambda p: [min(1.0, len(p) * x) for x in p],  # Bonferroni
    "paired_interval": lambda a, b: (float(torch.tensor(a).mean() - torch.tensor(b).mean()) - 0.01,
                                     float(torch.tensor(a).mean() - torch.tensor(b).mean()) + 0.01),
}
